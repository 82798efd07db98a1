package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// sample is one workload run against one server.
type sample struct {
	Phase    string      `json:"phase"` // single, cluster3
	Round    int         `json:"round"`
	Server   string      `json:"server"`
	Workload string      `json:"workload"`
	Result   load.Result `json:"result"`
	CPUSec   float64     `json:"server_cpu_s"`     // utime+stime delta over the run, all members
	RSSBytes int64       `json:"server_rss_bytes"` // VmRSS after the run, all members
	HWMBytes int64       `json:"server_hwm_bytes"` // VmHWM after the run, all members
	// DirtiedBytes is the write_bytes delta of /proc/<pid>/io over the run,
	// all members. It is not in the table: the kernel counts whole page-cache
	// folios when they are dirtied, and with large folios (ext4 on recent
	// kernels, a file filled by large writes) one small append counts up to
	// 2 MiB, while writeback sends only the dirty blocks to the device.
	// ClientCPUSec is the load generator's own CPU over the run.
	DirtiedBytes int64   `json:"server_dirtied_bytes"`
	ClientCPUSec float64 `json:"client_cpu_s"`
	// WALFsync is the run's delta of the members' own WAL fdatasync
	// histogram (count and seconds), nil when /metrics could not be read.
	WALFsync *walFsync `json:"server_wal_fsync,omitempty"`
}

// peak is a server's VmHWM at the end of a single-member round.
type peak struct {
	Round    int    `json:"round"`
	Server   string `json:"server"`
	HWMBytes int64  `json:"hwm_bytes"`
}

// row is one line of the comparison table: a figure's median over the
// rounds for each server and their ratio.
type row struct {
	Section  string    `json:"section"`
	Workload string    `json:"workload"`
	Figure   string    `json:"figure"`
	Unit     string    `json:"unit"`
	Better   string    `json:"better"` // higher or lower
	Etcd     *float64  `json:"etcd"`
	Ballast  *float64  `json:"ballast"`
	EtcdAll  []float64 `json:"etcd_rounds,omitempty"`
	BallAll  []float64 `json:"ballast_rounds,omitempty"`
	Ratio    *float64  `json:"ratio"` // ballast/etcd of the medians
	RatioMin *float64  `json:"ratio_min,omitempty"`
	RatioMax *float64  `json:"ratio_max,omitempty"`
	Target   string    `json:"target,omitempty"`
	Result   string    `json:"result,omitempty"` // pass, fail, n/a
	Note     string    `json:"note,omitempty"`
}

type report struct {
	Started            string            `json:"started"`
	DurationSec        float64           `json:"duration_s"`
	Options            map[string]any    `json:"options"`
	Machine            machineInfo       `json:"machine"`
	Floor              floorResult       `json:"disk_floor"`
	Samples            []sample          `json:"samples"`
	Peaks              []peak            `json:"peaks"`
	Memory             []memSample       `json:"memory"`
	ClusterUnsupported map[string]string `json:"cluster3_not_formed,omitempty"`
	Profiles           []string          `json:"cpu_profiles,omitempty"`
	Rows               []row             `json:"rows"`
	Error              string            `json:"error,omitempty"`
	Incidents          []string          `json:"incidents,omitempty"` // discarded attempts
	Workloads          []workloadJSON    `json:"workloads"`
}

type workloadJSON struct {
	Name, Desc string
	Config     load.Config
}

func optionsJSON(o options) map[string]any {
	return map[string]any{
		"quick": o.quick, "rounds": o.rounds, "workloads": o.only, "cluster": o.cluster, "memory": o.memory,
		"mem_keys": o.memKeys, "mem_big_keys": o.memBigKeys, "mem_watchers": o.memWatchers,
		"mem_key_size": memKeySize, "mem_val_size": memValSize,
		"floor_iterations": o.floorIters, "scale": o.scale, "key_size": o.shape.KeySize, "val_size": o.shape.ValSize,
		"key_space": o.shape.KeySpace, "seq_keys": o.shape.SeqKeys, "rate": o.shape.Rate,
		"max_run_s": o.shape.MaxDuration.Seconds(), "server_flags": commonFlags(),
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ptr(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// figureDefs are the per-workload figures: name, unit, better, getter.
var figureDefs = []struct {
	name, unit, better string
	qpsOnly            bool
	only               []string               // when set, only these workloads have the figure
	get                func(s sample) float64 // NaN: no value in this sample
}{
	{"qps", "req/s", "higher", true, nil, func(s sample) float64 { return s.Result.QPS }},
	{"p50", "ms", "lower", false, nil, func(s sample) float64 { return s.Result.Latency.P50 }},
	{"p99", "ms", "lower", false, nil, func(s sample) float64 { return s.Result.Latency.P99 }},
	{"p99.9", "ms", "lower", false, nil, func(s sample) float64 { return s.Result.Latency.P999 }},
	{"server CPU", "s", "lower", false, nil, func(s sample) float64 { return s.CPUSec }},
	{"server RSS after", "MiB", "lower", false, nil, func(s sample) float64 { return float64(s.RSSBytes) / (1 << 20) }},
	// The servers' own WAL fdatasync histogram: how many a put costs, and
	// how long one takes inside the run (slower than the back-to-back
	// floor when the CPUs idle between requests).
	{"WAL fdatasyncs per request", "", "lower", false, fsyncFigureWorkloads, fsyncsPerRequest},
	{"WAL fdatasync mean", "ms", "lower", false, fsyncFigureWorkloads, fsyncMeanMs},
}

// fsyncFigureWorkloads have the WAL fdatasync figures in the table (the
// JSON has the counters of every run).
var fsyncFigureWorkloads = []string{"put-1c", "put-100c"}

func fsyncsPerRequest(s sample) float64 {
	if s.WALFsync == nil || s.Result.Requests == 0 {
		return math.NaN()
	}
	return s.WALFsync.Count / float64(s.Result.Requests)
}

func fsyncMeanMs(s sample) float64 {
	if s.WALFsync == nil || s.WALFsync.Count == 0 {
		return math.NaN()
	}
	return s.WALFsync.Sec / s.WALFsync.Count * 1000
}

// build turns the samples into rows.
func (r *report) build(single, multi []workload) {
	r.Rows = nil
	r.Workloads = nil
	for _, w := range append(append([]workload{}, single...), multi...) {
		r.Workloads = append(r.Workloads, workloadJSON{Name: w.Name, Desc: w.Desc, Config: w.Cfg})
	}
	r.workloadRows("single member", "single", single)
	r.peakRows()
	r.workloadRows("3 members", "cluster3", multi)
	r.memoryRows()
	r.floorRows()
	r.pathRows()
	r.floorBoundRows()
	r.clientCPURows()
}

func (r *report) workloadRows(section, phase string, ws []workload) {
	for _, w := range ws {
		byServer := map[string]map[int]sample{"etcd": {}, "ballast": {}}
		errs := map[string]int{}
		for _, s := range r.Samples {
			if s.Phase == phase && s.Workload == w.Name {
				byServer[s.Server][s.Round] = s
				errs[s.Server] += s.Result.Errors
			}
		}
		if len(byServer["etcd"]) == 0 && len(byServer["ballast"]) == 0 && (phase != "cluster3" || len(r.ClusterUnsupported) == 0) {
			continue
		}
		for _, f := range figureDefs {
			if f.qpsOnly && !w.HasQPS || f.only != nil && !slices.Contains(f.only, w.Name) {
				continue
			}
			rw := row{Section: section, Workload: w.Name, Figure: f.name, Unit: f.unit, Better: f.better}
			var e, b []float64
			var ratios []float64
			for round := range 64 {
				se, okE := byServer["etcd"][round]
				sb, okB := byServer["ballast"][round]
				okE = okE && !math.IsNaN(f.get(se))
				okB = okB && !math.IsNaN(f.get(sb))
				if okE {
					e = append(e, f.get(se))
				}
				if okB {
					b = append(b, f.get(sb))
				}
				if okE && okB && f.get(se) > 0 {
					ratios = append(ratios, f.get(sb)/f.get(se))
				}
			}
			rw.EtcdAll, rw.BallAll = e, b
			rw.Etcd, rw.Ballast = ptr(median(e)), ptr(median(b))
			if rw.Etcd != nil && rw.Ballast != nil && *rw.Etcd > 0 {
				rw.Ratio = ptr(*rw.Ballast / *rw.Etcd)
			}
			if len(ratios) > 1 {
				rw.RatioMin, rw.RatioMax = ptr(slices.Min(ratios)), ptr(slices.Max(ratios))
			}
			for _, t := range w.Targets {
				if t.Figure == f.name {
					rw.Target = t.String()
					rw.Result = judge(rw, t)
				}
			}
			if rw.Ballast == nil && phase == "cluster3" {
				if why, ok := r.ClusterUnsupported["ballast"]; ok {
					rw.Result = "n/a"
					_ = why // the reason is printed once, above the table
					rw.Note = "multi-member not supported yet"
				}
			}
			if rw.Etcd == nil && phase == "cluster3" {
				if why, ok := r.ClusterUnsupported["etcd"]; ok {
					rw.Result = "n/a"
					rw.Note = "etcd cluster did not form (" + firstLine(why) + ")"
				}
			}
			if errs["etcd"]+errs["ballast"] > 0 {
				rw.Note = strings.TrimSpace(rw.Note + fmt.Sprintf(" errors: etcd %d, ballast %d", errs["etcd"], errs["ballast"]))
				if errs["ballast"] > 0 && rw.Result == "pass" {
					rw.Result = "fail"
				}
			}
			r.Rows = append(r.Rows, rw)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 120 {
		l = l[:120] + "…"
	}
	return l
}

// judge compares the ratio of the medians with the target; when the
// per-round ratios fall on both sides of it the verdict is marked noisy.
func judge(rw row, t target) string {
	if rw.Ratio == nil {
		return "n/a"
	}
	res := "fail"
	if t.met(*rw.Ratio) {
		res = "pass"
	}
	if rw.RatioMin != nil && rw.RatioMax != nil && t.met(*rw.RatioMin) != t.met(*rw.RatioMax) {
		res += " (noisy)"
	}
	return res
}

func (r *report) peakRows() {
	var e, b []float64
	for _, p := range r.Peaks {
		v := float64(p.HWMBytes) / (1 << 20)
		if p.Server == "etcd" {
			e = append(e, v)
		} else {
			b = append(b, v)
		}
	}
	if len(e)+len(b) == 0 {
		return
	}
	rw := row{Section: "single member", Workload: "whole round", Figure: "peak RSS (VmHWM)", Unit: "MiB", Better: "lower",
		EtcdAll: e, BallAll: b, Etcd: ptr(median(e)), Ballast: ptr(median(b))}
	if rw.Etcd != nil && rw.Ballast != nil {
		rw.Ratio = ptr(*rw.Ballast / *rw.Etcd)
	}
	r.Rows = append(r.Rows, rw)
}

func (r *report) memoryRows() {
	if len(r.Memory) == 0 {
		return
	}
	get := func(server string, f func(m memSample) float64) []float64 {
		var v []float64
		for _, m := range r.Memory {
			if m.Server == server {
				v = append(v, f(m))
			}
		}
		return v
	}
	var keys, big, watchers int
	for _, m := range r.Memory {
		keys, big, watchers = m.Keys, m.BigKeys, m.Watchers
	}
	add := func(workload, figure, unit string, f func(m memSample) float64, t *target, note string) {
		e, b := get("etcd", f), get("ballast", f)
		rw := row{Section: "memory", Workload: workload, Figure: figure, Unit: unit, Better: "lower",
			EtcdAll: e, BallAll: b, Etcd: ptr(median(e)), Ballast: ptr(median(b)), Note: note}
		if rw.Etcd != nil && rw.Ballast != nil && *rw.Etcd > 0 {
			rw.Ratio = ptr(*rw.Ballast / *rw.Etcd)
		}
		if t != nil {
			rw.Target = t.String()
			rw.Result = judge(rw, *t)
		}
		r.Rows = append(r.Rows, rw)
	}
	half := &target{Figure: "index", Op: "<=", Ratio: 0.5}
	kw := fmt.Sprintf("%dk keys", keys/1000)
	add(kw, "index: live heap per key", "B", func(m memSample) float64 { return m.HeapPerKey }, half,
		fmt.Sprintf("etcd docs: ≈120 B + key size (%d B) per key", memKeySize))
	add(kw, "index: live heap per revision", "B", func(m memSample) float64 { return m.HeapPerRev }, nil,
		"etcd docs: ≈30 B + pointer per revision")
	// The anonymous-RSS deltas are in the JSON only: they move with the Go
	// scavenger's timing (they even go negative) more than with the data.
	ww := fmt.Sprintf("%d watchers", watchers)
	add(ww, "live heap per 10k watchers", "MiB", func(m memSample) float64 { return m.HeapPer10kWatch / (1 << 20) }, nil, "")
	bw := fmt.Sprintf("%s keys", humanCount(big))
	bigOK := func(f func(m memSample) float64) func(m memSample) float64 {
		return func(m memSample) float64 {
			if m.BigFailures != "" {
				return math.NaN()
			}
			return f(m)
		}
	}
	add(bw, "RSS (VmRSS)", "MiB", bigOK(func(m memSample) float64 { return mb(m.BigRSS) }), nil,
		fmt.Sprintf("%d B keys, %d B values, loaded by 100-put txns", memKeySize, memValSize))
	add(bw, "anon RSS", "MiB", bigOK(func(m memSample) float64 { return mb(m.BigRssAnon) }), nil, "")
	add(bw, "live heap", "MiB", bigOK(func(m memSample) float64 { return mb(m.BigHeap) }), nil, "")
	add(bw, "data dir size", "MiB", bigOK(func(m memSample) float64 { return mb(m.BigDataDir) }), nil, "apparent size, includes preallocated WAL")
	add(bw, "load time", "s", bigOK(func(m memSample) float64 { return m.BigLoadSec }), nil, "")
}

func humanCount(n int) string {
	if n >= 1000000 && n%1000000 == 0 {
		return fmt.Sprintf("%dM", n/1000000)
	}
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// floorRows relate single-client put latency to the disk's fdatasync floor.
func (r *report) floorRows() {
	floor := r.Floor.Written.P50
	if floor <= 0 {
		return
	}
	for _, rw := range r.Rows {
		if rw.Workload == "put-1c" && rw.Figure == "p50" {
			x := row{Section: "disk floor", Workload: "put-1c", Figure: "p50 ÷ fdatasync p50", Unit: "×", Better: "lower", Note: fmt.Sprintf("floor p50 %.3f ms", floor)}
			if rw.Etcd != nil {
				x.Etcd = ptr(*rw.Etcd / floor)
			}
			if rw.Ballast != nil {
				x.Ballast = ptr(*rw.Ballast / floor)
			}
			x.Ratio = rw.Ratio
			r.Rows = append(r.Rows, x)
		}
	}
}

// pathRows split single-client put latency into the round trip any call
// pays (a serializable one-key get: client, gRPC, loopback) and what the
// write path adds to it (propose, raft, WAL write and fdatasync, apply).
// The first is largely the same code in both servers; the second is where
// they differ.
func (r *report) pathRows() {
	var put, get *row
	for i := range r.Rows {
		rw := &r.Rows[i]
		if rw.Section != "single member" || rw.Figure != "p50" {
			continue
		}
		switch rw.Workload {
		case "put-1c":
			put = rw
		case "range-ser-1c":
			get = rw
		}
	}
	if put == nil || get == nil {
		return
	}
	diff := func(a, b *float64) *float64 {
		if a == nil || b == nil {
			return nil
		}
		return ptr(*a - *b)
	}
	x := row{Section: "single-client path", Workload: "put-1c", Figure: "p50 − range-ser-1c p50", Unit: "ms", Better: "lower",
		Etcd: diff(put.Etcd, get.Etcd), Ballast: diff(put.Ballast, get.Ballast),
		Note: "what the write path adds to the round trip a read shares"}
	if x.Etcd != nil && x.Ballast != nil && *x.Etcd > 0 {
		x.Ratio = ptr(*x.Ballast / *x.Etcd)
	}
	r.Rows = append(r.Rows, x)
}

// floorBoundRows bound single-client put latency from below by what no
// server code can remove: the round trip any call pays (range-ser-1c's
// mean) plus the server's own WAL fdatasyncs per put at their in-run mean.
// What a put takes beyond that floor is the server's write path: propose,
// raft, WAL encoding, apply and hand-offs between them. The note gives
// the best put-1c throughput ratio Ballast could reach with a write path
// that cost nothing: etcd's put-1c mean over Ballast's floor.
func (r *report) floorBoundRows() {
	const phase = "single"
	mean := func(s sample) float64 { return s.Result.Latency.Mean }
	put := map[string]*float64{}
	floor := map[string]*float64{}
	beyond := map[string]*float64{}
	for _, srv := range []string{"etcd", "ballast"} {
		get := r.medianOf(phase, "range-ser-1c", srv, mean)
		put[srv] = r.medianOf(phase, "put-1c", srv, mean)
		n := r.medianOf(phase, "put-1c", srv, fsyncsPerRequest)
		t := r.medianOf(phase, "put-1c", srv, fsyncMeanMs)
		if get == nil || put[srv] == nil || n == nil || t == nil {
			return
		}
		floor[srv] = ptr(*get + *n**t)
		beyond[srv] = ptr(*put[srv] - *floor[srv])
	}
	ratio := func(m map[string]*float64) *float64 {
		if *m["etcd"] <= 0 {
			return nil
		}
		return ptr(*m["ballast"] / *m["etcd"])
	}
	r.Rows = append(r.Rows,
		row{Section: "single-client path", Workload: "put-1c", Figure: "floor: range-ser-1c mean + WAL fdatasyncs", Unit: "ms", Better: "lower",
			Etcd: floor["etcd"], Ballast: floor["ballast"], Ratio: ratio(floor),
			Note: fmt.Sprintf("best put-1c ratio a free write path could reach: etcd put-1c mean ÷ Ballast floor = %.2f×", *put["etcd"] / *floor["ballast"])},
		row{Section: "single-client path", Workload: "put-1c", Figure: "mean beyond the floor", Unit: "ms", Better: "lower",
			Etcd: beyond["etcd"], Ballast: beyond["ballast"], Ratio: ratio(beyond),
			Note: "the server's own write path: propose, raft, WAL encoding, apply, hand-offs"})
}

// clientCPURows give the load generator's CPU per single-client call: the
// part of the round trip that is neither server nor disk. It differs
// between the servers because the client's work follows what a server
// sends (frames, writes, pings to answer).
func (r *report) clientCPURows() {
	const phase = "single"
	perCall := func(s sample) float64 {
		if s.Result.Requests == 0 {
			return math.NaN()
		}
		return s.ClientCPUSec / float64(s.Result.Requests) * 1e6
	}
	for _, w := range []string{"put-1c", "range-ser-1c"} {
		x := row{Section: "single-client path", Workload: w, Figure: "load generator CPU per request", Unit: "µs", Better: "lower",
			Etcd: r.medianOf(phase, w, "etcd", perCall), Ballast: r.medianOf(phase, w, "ballast", perCall),
			Note: "client/v3 in the bench process, same code against both servers"}
		if x.Etcd == nil || x.Ballast == nil {
			continue
		}
		if *x.Etcd > 0 {
			x.Ratio = ptr(*x.Ballast / *x.Etcd)
		}
		r.Rows = append(r.Rows, x)
	}
}

// medianOf is the median over rounds of get for one workload and server;
// nil when no round has a value.
func (r *report) medianOf(phase, workload, srv string, get func(sample) float64) *float64 {
	var v []float64
	for _, s := range r.Samples {
		if s.Phase == phase && s.Workload == workload && s.Server == srv {
			if x := get(s); !math.IsNaN(x) {
				v = append(v, x)
			}
		}
	}
	if len(v) == 0 {
		return nil
	}
	return ptr(median(v))
}

func fmtNum(p *float64) string {
	if p == nil {
		return "n/a"
	}
	v := *p
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func (r *report) markdown() string {
	var sb strings.Builder
	m := r.Machine
	fmt.Fprintf(&sb, "\n## Ballast vs etcd %s\n\n", etcdVersion)
	fmt.Fprintf(&sb, "- machine: %s, %d cores, %.1f GiB RAM, kernel %s; data dirs on %s (%s)\n",
		m.CPUModel, m.Cores, float64(m.MemTotalBytes)/(1<<30), m.Kernel, m.DataDirFS, m.DataDir)
	fmt.Fprintf(&sb, "- disk floor (4 KiB pwrite+fdatasync ×%d, written file): p50 %.3f ms, p99 %.3f ms; fallocated file: p50 %.3f ms, p99 %.3f ms; written file with O_DIRECT writes: p50 %.3f ms, p99 %.3f ms\n",
		r.Floor.Iterations, r.Floor.Written.P50, r.Floor.Written.P99, r.Floor.Fallocated.P50, r.Floor.Fallocated.P99, r.Floor.Direct.P50, r.Floor.Direct.P99)
	fmt.Fprintf(&sb, "- ballast: %s (commit %s); etcd: %s (%s); bench built with %s\n", m.BallastVersion, m.Commit, m.EtcdVersion, m.EtcdBinary, m.GoVersion)
	steal := "unknown"
	if m.StealPercent >= 0 {
		steal = fmt.Sprintf("%.1f%%", m.StealPercent)
	}
	fmt.Fprintf(&sb, "- load average: %s at start, %s at end; CPU steal during the run %s (the machine is shared: other load, and other guests of the host, slow both servers alike only while it lasts)\n", m.LoadAvgStart, m.LoadAvgEnd, steal)
	fmt.Fprintf(&sb, "- %v rounds, order alternating per round (etcd first in odd rounds), fresh data dirs per server per round; medians shown, ratio = ballast ÷ etcd with [min–max] of the per-round ratios; same flags: %s\n",
		r.Options["rounds"], strings.Join(commonFlags(), " "))
	fmt.Fprintf(&sb, "- duration %.0fs\n", r.DurationSec)
	for _, n := range m.Notes {
		fmt.Fprintf(&sb, "- NOTE: %s\n", n)
	}
	for _, s := range []string{"etcd", "ballast"} {
		if why, ok := r.ClusterUnsupported[s]; ok {
			fmt.Fprintf(&sb, "- 3 members: %s did not form a cluster, figures n/a: %s\n", s, firstLine(why))
		}
	}
	for _, inc := range r.Incidents {
		fmt.Fprintf(&sb, "- INCIDENT: %s\n", firstLine(inc))
	}
	if r.Error != "" {
		fmt.Fprintf(&sb, "- ERROR (partial results): %s\n", firstLine(r.Error))
	}
	sb.WriteString("\n| section | workload | figure | better | etcd | ballast | ratio b/e [range] | target | result | note |\n")
	sb.WriteString("|---|---|---|---|---:|---:|---:|---|---|---|\n")
	for _, rw := range r.Rows {
		ratio := fmtNum(rw.Ratio)
		if rw.Ratio != nil {
			ratio += "×"
			if rw.RatioMin != nil && rw.RatioMax != nil {
				ratio += fmt.Sprintf(" [%s–%s]", fmtNum(rw.RatioMin), fmtNum(rw.RatioMax))
			}
		}
		better := "↑"
		if rw.Better == "lower" {
			better = "↓"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n",
			rw.Section, rw.Workload, rw.Figure, rw.Unit, better, fmtNum(rw.Etcd), fmtNum(rw.Ballast), ratio, rw.Target, rw.Result, rw.Note)
	}
	sb.WriteString("\n↑ higher is better, ↓ lower is better. For a ↑ figure a ratio above 1 favours Ballast; for a ↓ figure a ratio below 1 does.\n")
	var pass, fail, na int
	var failed []string
	for _, rw := range r.Rows {
		switch {
		case strings.HasPrefix(rw.Result, "pass"):
			pass++
		case strings.HasPrefix(rw.Result, "fail"):
			fail++
			failed = append(failed, rw.Workload+" "+rw.Figure)
		case rw.Result == "n/a":
			na++
		}
	}
	fmt.Fprintf(&sb, "\nTargets: %d pass, %d fail, %d n/a.", pass, fail, na)
	if len(failed) > 0 {
		fmt.Fprintf(&sb, " Failing: %s.", strings.Join(failed, "; "))
	}
	sb.WriteString("\n")
	for _, p := range r.Profiles {
		fmt.Fprintf(&sb, "\nCPU profile: %s (go tool pprof -top %s)\n", p, p)
	}
	return sb.String()
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
