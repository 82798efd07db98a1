package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// procStat is what /proc says about a server process.
type procStat struct {
	CPU     time.Duration // utime + stime since the process started
	RSS     int64         // VmRSS, bytes
	HWM     int64         // VmHWM (peak RSS), bytes
	RssAnon int64         // anonymous resident memory (heap, stacks), bytes
	RssFile int64         // file-backed resident memory (binary, bbolt mmap), bytes
	Written int64         // write_bytes of /proc/<pid>/io: bytes sent to the storage layer
}

func readProc(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may contain spaces; the fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	st.CPU = time.Duration(ut+stt) * time.Second / clockTick

	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &st.RSS
		case "VmHWM":
			dst = &st.HWM
		case "RssAnon":
			dst = &st.RssAnon
		case "RssFile":
			dst = &st.RssFile
		default:
			continue
		}
		fs := strings.Fields(rest) // "12345 kB"
		if len(fs) >= 1 {
			kb, _ := strconv.ParseInt(fs[0], 10, 64)
			*dst = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
				st.Written, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	return st, nil
}

// heapAfterGC asks a server started with --enable-pprof to collect garbage
// and report its runtime.MemStats (net/http/pprof's heap profile with gc=1
// and debug=1); it returns HeapAlloc, the bytes of live heap objects.
func heapAfterGC(ctx context.Context, clientURL string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/debug/pprof/heap: %s (is --enable-pprof on?)", clientURL, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/debug/pprof/heap: no HeapAlloc in the answer", clientURL)
}

// fetchCPUProfile captures a CPU profile of d from a server started with
// --enable-pprof into path.
func fetchCPUProfile(ctx context.Context, clientURL string, d time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", clientURL, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitQuiet waits until the processes have used less than 5ms of CPU over
// 200ms (background commits and snapshots of the previous run are done), for
// at most limit. It reports whether they went quiet.
func waitQuiet(ctx context.Context, pids []int, limit time.Duration) bool {
	total := func() time.Duration {
		var sum time.Duration
		for _, pid := range pids {
			if st, err := readProc(pid); err == nil {
				sum += st.CPU
			}
		}
		return sum
	}
	deadline := time.Now().Add(limit)
	prev := total()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		cur := total()
		if cur-prev < 5*time.Millisecond {
			return true
		}
		prev = cur
	}
	return false
}

// walFsync is a server's cumulative WAL fdatasync count and seconds, as
// both etcd and Ballast export them (etcd_disk_wal_fsync_duration_seconds).
type walFsync struct {
	Count float64 `json:"count"`
	Sec   float64 `json:"seconds"`
}

const walFsyncMetric = "etcd_disk_wal_fsync_duration_seconds"

// scrapeWALFsync reads the WAL fdatasync histogram's count and sum from a
// member's /metrics.
func scrapeWALFsync(ctx context.Context, clientURL string) (walFsync, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/metrics", nil)
	if err != nil {
		return walFsync{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return walFsync{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return walFsync{}, fmt.Errorf("%s/metrics: %s", clientURL, resp.Status)
	}
	return parseWALFsync(resp.Body)
}

// parseWALFsync finds the histogram's _count and _sum in Prometheus text
// exposition.
func parseWALFsync(r io.Reader) (walFsync, error) {
	var w walFsync
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case walFsyncMetric + "_count":
			dst = &w.Count
		case walFsyncMetric + "_sum":
			dst = &w.Sec
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return walFsync{}, fmt.Errorf("%s: %w", name, err)
		}
		*dst = v
		found++
	}
	if err := sc.Err(); err != nil {
		return walFsync{}, err
	}
	if found != 2 {
		return walFsync{}, fmt.Errorf("no %s_count and _sum in /metrics", walFsyncMetric)
	}
	return w, nil
}
