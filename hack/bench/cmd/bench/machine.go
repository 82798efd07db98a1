package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// machineInfo describes where the numbers were taken.
type machineInfo struct {
	CPUModel       string   `json:"cpu_model"`
	Cores          int      `json:"cores"`
	MemTotalBytes  int64    `json:"mem_total_bytes"`
	Kernel         string   `json:"kernel"`
	DataDir        string   `json:"data_dir"`
	DataDirFS      string   `json:"data_dir_fs"`
	GoVersion      string   `json:"go_version"`        // the toolchain that built the bench
	Commit         string   `json:"commit"`            // HEAD of the repository, "+dirty" when the tree has changes
	BallastVersion string   `json:"ballast_version"`   // `ballast version`
	EtcdVersion    string   `json:"etcd_version"`      // `etcd --version`
	EtcdBinary     string   `json:"etcd_binary"`       // path of the baseline binary
	LoadAvgStart   string   `json:"loadavg_start"`     // /proc/loadavg before the run
	LoadAvgEnd     string   `json:"loadavg_end"`       // and after
	Notes          []string `json:"notes,omitempty"`   // anything that weakens the comparison
	GOMAXPROCS     int      `json:"gomaxprocs_client"` // of the load generator
	// StealPercent is the share of CPU time the hypervisor gave to other
	// guests during the run (/proc/stat steal), -1 when unknown: what makes
	// figures vary between rounds on a shared host.
	StealPercent float64  `json:"cpu_steal_percent"`
	cpuStart     cpuTicks // /proc/stat at the start
}

func collectMachine(repo, dataDir string, srvs map[string]server) machineInfo {
	m := machineInfo{
		Cores:      runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		DataDir:    dataDir,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				var kb int64
				for _, c := range strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) {
					if c >= '0' && c <= '9' {
						kb = kb*10 + int64(c-'0')
					}
				}
				m.MemTotalBytes = kb << 10
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.DataDirFS = fsType(dataDir)
	m.Commit = gitCommit(repo)
	m.BallastVersion = firstLines(output(srvs["ballast"].Bin, "version"), 3)
	m.EtcdVersion = firstLines(output(srvs["etcd"].Bin, "--version"), 1)
	m.EtcdBinary = srvs["etcd"].Bin
	m.LoadAvgStart = loadAvg()
	m.cpuStart = readCPUTicks()
	m.StealPercent = -1
	return m
}

// cpuTicks are the all-CPU counters of /proc/stat's first line.
type cpuTicks struct{ steal, total uint64 }

func readCPUTicks() cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPUTicks(line)
}

// parseCPUTicks reads "cpu user nice system idle iowait irq softirq steal
// guest guest_nice" (guest time is already counted in user and nice).
func parseCPUTicks(line string) cpuTicks {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTicks{}
	}
	var t cpuTicks
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTicks{}
		}
		t.total += n
		if i == 7 {
			t.steal = n
		}
	}
	return t
}

// stealPercent is the steal share between two readings, -1 when unknown.
func stealPercent(from, to cpuTicks) float64 {
	if to.total <= from.total || to.steal < from.steal {
		return -1
	}
	return 100 * float64(to.steal-from.steal) / float64(to.total-from.total)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return strings.TrimSpace(string(b))
}

func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

func gitCommit(repo string) string {
	c := output("git", "-C", repo, "rev-parse", "HEAD")
	if strings.HasPrefix(c, "error") {
		return "unknown"
	}
	if st := output("git", "-C", repo, "status", "--porcelain", "--untracked-files=no"); st != "" && !strings.HasPrefix(st, "error") {
		c += "+dirty"
	}
	return c
}

// fsType names the file system holding dir (the common magic numbers).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	default:
		return "0x" + strconv.FormatUint(uint64(st.Type), 16)
	}
}
