// Command bench compares Ballast with real etcd side by side on this machine
// in one run: same flags, same disk, fsync on, loopback, alternating runs,
// several rounds with fresh data directories, medians reported. See
// hack/bench/README.md.
//
//	bench [flags]          the comparison (make bench)
//	bench load [flags]     one workload against given endpoints (etcd benchmark-like)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// etcdVersion is the baseline, the version of go.etcd.io/etcd/server/v3
// this module requires.
const etcdVersion = "v3.7.3"

type options struct {
	quick        bool
	rounds       int
	repo         string
	ballastBin   string
	etcdBin      string
	noBuild      bool
	tmpDir       string
	resultsDir   string
	only         string
	cluster      bool
	memory       bool
	memKeys      int
	memBigKeys   int
	memWatchers  int
	floorIters   int
	cpuprofile   string
	profileSecs  int
	profileEtcd  bool
	timeout      time.Duration
	keep         bool
	scale        float64
	shape        shape
	clusterReady time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:]))
	}
	o := parseFlags(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) options {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.BoolVar(&o.quick, "quick", false, "about 2 minutes: smaller totals, 2 rounds, smaller memory loads")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds of alternating runs (default 5, quick 2)")
	fs.StringVar(&o.repo, "repo", "", "repository root (default: found from the working directory)")
	fs.StringVar(&o.ballastBin, "ballast", "", "ballast binary (default <repo>/bin/ballast, built with make build)")
	fs.StringVar(&o.etcdBin, "etcd", "", "etcd binary (default <repo>/bin/etcd, else hack/tools.sh etcd, else built here from go.etcd.io/etcd/server/v3 "+etcdVersion+")")
	fs.BoolVar(&o.noBuild, "no-build", false, "do not run make build (bin/ballast must exist)")
	fs.StringVar(&o.tmpDir, "tmp", "/tmp", "parent of the temporary directory holding the data dirs (fsync'd: use a real disk, not tmpfs)")
	fs.StringVar(&o.resultsDir, "results", "", "where bench-results.json/.md and profiles go (default <repo>/hack/bench/results)")
	fs.StringVar(&o.only, "workloads", "", "comma-separated workload names to run (default all; see -list)")
	list := fs.Bool("list", false, "list the workloads and exit")
	fs.BoolVar(&o.cluster, "cluster", true, "also compare 3-member clusters")
	fs.BoolVar(&o.memory, "memory", true, "also measure memory (index bytes per key and revision, N keys, watchers)")
	fs.IntVar(&o.memKeys, "mem-keys", 0, "keys loaded (then overwritten once) for the bytes-per-key/revision figures (default 200000, quick 50000)")
	fs.IntVar(&o.memBigKeys, "mem-big-keys", 0, "keys for the RSS-with-many-keys figure (default 1000000, quick 200000)")
	fs.IntVar(&o.memWatchers, "mem-watchers", 10000, "watchers for the memory-per-watchers figure")
	fs.IntVar(&o.floorIters, "floor-iterations", 500, "4 KiB pwrite+fdatasync iterations measuring the disk floor")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "workload during which to capture a CPU profile of ballast into the results dir (on fresh servers after the rounds)")
	fs.IntVar(&o.profileSecs, "cpuprofile-seconds", 10, "length of the CPU profile")
	fs.BoolVar(&o.profileEtcd, "cpuprofile-etcd", false, "also profile etcd during the -cpuprofile workload")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.BoolVar(&o.keep, "keep", false, "keep the data dirs and server logs")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every workload's total by this")
	fs.IntVar(&o.shape.KeySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&o.shape.ValSize, "val-size", 256, "value size in bytes")
	fs.IntVar(&o.shape.KeySpace, "key-space", 10000, "distinct keys written by the put workloads")
	fs.BoolVar(&o.shape.SeqKeys, "seq-keys", false, "write keys in order instead of at random")
	fs.Float64Var(&o.shape.Rate, "rate", 0, "requests per second per workload run (0: as fast as possible)")
	fs.DurationVar(&o.shape.MaxDuration, "max-run", 60*time.Second, "upper bound on one workload run")
	fs.DurationVar(&o.clusterReady, "cluster-ready-timeout", 20*time.Second, "how long a 3-member cluster may take to elect a leader and serve")
	_ = fs.Parse(args)
	if *list {
		sz := workloadSizes(o.quick, o.scale)
		for _, w := range append(singleWorkloads(sz, o.shape), clusterWorkloads(sz, o.shape)...) {
			fmt.Printf("%-16s %s\n", w.Name, w.Desc)
		}
		os.Exit(0)
	}
	if o.rounds <= 0 {
		// Five: with three, whole runs of the same code disagreed by up
		// to 0.25 in a ratio on a 2-core VM; medians of five move less.
		o.rounds = 5
		if o.quick {
			o.rounds = 2
		}
	}
	if o.memKeys <= 0 {
		o.memKeys = 200000
		if o.quick {
			o.memKeys = 50000
		}
	}
	if o.memBigKeys <= 0 {
		o.memBigKeys = 1000000
		if o.quick {
			o.memBigKeys = 200000
		}
	}
	return o
}

// findRepo walks up from the working directory to the root module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/ballastdb/ballast\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found; pass -repo")
		}
		dir = parent
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	var err error
	if o.repo == "" {
		if o.repo, err = findRepo(); err != nil {
			return err
		}
	}
	if o.resultsDir == "" {
		o.resultsDir = filepath.Join(o.repo, "hack", "bench", "results")
	}
	if err := os.MkdirAll(o.resultsDir, 0o755); err != nil {
		return err
	}
	ballast, err := locateBallast(ctx, o)
	if err != nil {
		return err
	}
	etcd, err := locateEtcd(ctx, o)
	if err != nil {
		return err
	}
	srvs := map[string]server{
		"etcd":    {Name: "etcd", Bin: etcd},
		"ballast": {Name: "ballast", Bin: ballast, Args: []string{"node"}},
	}
	work, err := os.MkdirTemp(o.tmpDir, "ballast-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("data dirs and logs kept under %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	rep := &report{Started: began.UTC().Format(time.RFC3339), Options: optionsJSON(o)}
	rep.Machine = collectMachine(o.repo, work, srvs)
	if !strings.Contains(rep.Machine.EtcdVersion, strings.TrimPrefix(etcdVersion, "v")) {
		rep.Machine.Notes = append(rep.Machine.Notes, fmt.Sprintf("the etcd binary reports %q, not %s", rep.Machine.EtcdVersion, etcdVersion))
	}
	if rep.Machine.DataDirFS == "tmpfs" {
		rep.Machine.Notes = append(rep.Machine.Notes, "the data dirs are on tmpfs, where fsync is free: latencies are not those of a disk (use -tmp)")
	}
	logf("ballast %s; etcd %s (%s); data under %s (%s); load average %s",
		rep.Machine.BallastVersion, rep.Machine.EtcdVersion, etcd, work, rep.Machine.DataDirFS, rep.Machine.LoadAvgStart)

	logf("disk floor: %d × 4 KiB pwrite+fdatasync", o.floorIters)
	if rep.Floor, err = measureFloor(work, o.floorIters); err != nil {
		return fmt.Errorf("disk floor: %w", err)
	}
	logf("disk floor: p50 %.3f ms, p99 %.3f ms (fallocated file: p50 %.3f ms)", rep.Floor.Written.P50, rep.Floor.Written.P99, rep.Floor.Fallocated.P50)

	sz := workloadSizes(o.quick, o.scale)
	single := filterWorkloads(singleWorkloads(sz, o.shape), o.only)
	multi := filterWorkloads(clusterWorkloads(sz, o.shape), o.only)
	b := &bench{o: o, srvs: srvs, work: work, rep: rep}

	if len(single) > 0 {
		if err := b.singleRounds(ctx, single); err != nil {
			return b.finish(err, single, multi)
		}
	}
	if o.cluster && len(multi) > 0 {
		if err := b.clusterRounds(ctx, multi); err != nil {
			return b.finish(err, single, multi)
		}
	}
	if o.memory {
		if err := b.memoryRounds(ctx); err != nil {
			return b.finish(err, single, multi)
		}
	}
	if o.cpuprofile != "" {
		if err := b.profile(ctx, append(append([]workload{}, single...), multi...)); err != nil {
			rep.Machine.Notes = append(rep.Machine.Notes, "cpu profile: "+err.Error())
			logf("cpu profile: %v", err)
		}
	}
	return b.finish(nil, single, multi)
}

// bench carries the state of one comparison.
type bench struct {
	o    options
	srvs map[string]server
	work string
	rep  *report
}

// order alternates which server goes first: round 0 etcd, ballast; round 1
// ballast, etcd; and so on (an ABBA sequence, so that neither server always
// runs right after the other).
func order(round int) []string {
	if round%2 == 0 {
		return []string{"etcd", "ballast"}
	}
	return []string{"ballast", "etcd"}
}

func (b *bench) finish(runErr error, single, multi []workload) error {
	b.rep.Machine.LoadAvgEnd = loadAvg()
	b.rep.Machine.StealPercent = stealPercent(b.rep.Machine.cpuStart, readCPUTicks())
	b.rep.DurationSec = time.Since(mustParse(b.rep.Started)).Seconds()
	if runErr != nil {
		b.rep.Error = runErr.Error()
	}
	b.rep.build(single, multi)
	md := b.rep.markdown()
	fmt.Print(md)
	jsonPath := filepath.Join(b.o.resultsDir, "bench-results.json")
	mdPath := filepath.Join(b.o.resultsDir, "bench-results.md")
	if err := b.rep.writeJSON(jsonPath); err != nil {
		return errors.Join(runErr, err)
	}
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return errors.Join(runErr, err)
	}
	logf("wrote %s and %s (%.0fs)", jsonPath, mdPath, b.rep.DurationSec)
	return runErr
}

func mustParse(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// measure runs w once against c and records the sample.
func (b *bench) measure(ctx context.Context, phase string, round int, c *cluster, w workload, quiet []int) error {
	pool, err := load.Dial(ctx, c.endpoints(), w.Cfg.Conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	measured, cleanup, err := prepare(ctx, w, pool)
	if err != nil {
		return fmt.Errorf("%s %s: prepare: %w", c.srv.Name, w.Name, err)
	}
	defer cleanup()
	// Let both servers finish the background work of the previous run
	// (backend commits, snapshots) before the clock starts.
	waitQuiet(ctx, quiet, 3*time.Second)
	// A member that exits ends the run at once instead of at its deadline.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() {
		select {
		case <-c.anyExited():
			cancelRun()
		case <-runCtx.Done():
		}
	}()
	fsyncBefore, fsyncErr := sumWALFsync(ctx, c)
	before, selfBefore := sumProc(c.pids()), sumProc([]int{os.Getpid()})
	res := measured(runCtx)
	after, selfAfter := sumProc(c.pids()), sumProc([]int{os.Getpid()})
	fsyncAfter, err := sumWALFsync(ctx, c)
	if fsyncErr == nil {
		fsyncErr = err
	}
	s := sample{
		Phase: phase, Round: round, Server: c.srv.Name, Workload: w.Name, Result: res,
		CPUSec:       (after.CPU - before.CPU).Seconds(),
		RSSBytes:     after.RSS,
		HWMBytes:     after.HWM,
		DirtiedBytes: after.Written - before.Written,
		ClientCPUSec: (selfAfter.CPU - selfBefore.CPU).Seconds(),
	}
	if fsyncErr != nil {
		logf("  %s %s: no WAL fdatasync figures for this run: %v", c.srv.Name, w.Name, fsyncErr)
	} else {
		s.WALFsync = &walFsync{Count: fsyncAfter.Count - fsyncBefore.Count, Sec: fsyncAfter.Sec - fsyncBefore.Sec}
	}
	b.rep.Samples = append(b.rep.Samples, s)
	lat := res.Latency
	logf("  %-7s %-16s %8.0f/s  p50 %7.3f  p99 %7.3f  p99.9 %7.3f ms  cpu %5.2fs  rss %4.0f MiB  err %d",
		c.srv.Name, w.Name, res.QPS, lat.P50, lat.P99, lat.P999, s.CPUSec, mb(s.RSSBytes), res.Errors)
	if res.Errors > 0 {
		logf("    first error: %s", res.FirstError)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// sumWALFsync adds up the members' WAL fdatasync counters.
func sumWALFsync(ctx context.Context, c *cluster) (walFsync, error) {
	var sum walFsync
	for _, ep := range c.endpoints() {
		w, err := scrapeWALFsync(ctx, ep)
		if err != nil {
			return walFsync{}, err
		}
		sum.Count += w.Count
		sum.Sec += w.Sec
	}
	return sum, nil
}

func sumProc(pids []int) procStat {
	var sum procStat
	for _, pid := range pids {
		st, err := readProc(pid)
		if err != nil {
			continue
		}
		sum.CPU += st.CPU
		sum.RSS += st.RSS
		sum.HWM += st.HWM
		sum.RssAnon += st.RssAnon
		sum.RssFile += st.RssFile
		sum.Written += st.Written
	}
	return sum
}

// start starts and waits for an n-member cluster of srv.
func (b *bench) start(ctx context.Context, srv string, dir string, n int, ready time.Duration) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := startCluster(b.srvs[srv], dir, n, "bench-"+srv)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, ready); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// singleRounds runs the single-member workloads: per round a fresh member of
// each server, both up at once, each workload run on one then the other.
func (b *bench) singleRounds(ctx context.Context, ws []workload) error {
	for r := range b.o.rounds {
		logf("round %d/%d (single member, order %v)", r+1, b.o.rounds, order(r))
		err := b.singleRound(ctx, r, ws)
		var ex *memberExit
		if errors.As(err, &ex) && ctx.Err() == nil {
			// Once per round: the machine is shared, and a stray signal
			// should not cost the whole run. It is reported, not hidden.
			b.discard("single", r, err)
			logf("round %d/%d again", r+1, b.o.rounds)
			err = b.singleRound(ctx, r, ws)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// memberExit is a server process that ended while being measured.
type memberExit struct {
	server, member, workload, status, tail string
}

func (e *memberExit) Error() string {
	return fmt.Sprintf("%s member %s exited during %s (%s); log tail:\n%s", e.server, e.member, e.workload, e.status, e.tail)
}

func exitOf(c *cluster, m *member, workload string) *memberExit {
	return &memberExit{server: c.srv.Name, member: m.name, workload: workload, status: m.exitStatus(), tail: logTail(m.logPath, 15)}
}

// discardServer drops one server's samples of a failed attempt.
func (b *bench) discardServer(phase string, r int, server string, why error) {
	keep := b.rep.Samples[:0]
	for _, s := range b.rep.Samples {
		if s.Phase != phase || s.Round != r || s.Server != server {
			keep = append(keep, s)
		}
	}
	b.rep.Samples = keep
	msg := fmt.Sprintf("%s round %d (%s) discarded and run again: %s", phase, r+1, server, why)
	b.rep.Incidents = append(b.rep.Incidents, msg)
	logf("%s", msg)
}

// discard drops the samples of a failed attempt at a round and records why.
func (b *bench) discard(phase string, r int, why error) {
	keep := b.rep.Samples[:0]
	for _, s := range b.rep.Samples {
		if s.Phase != phase || s.Round != r {
			keep = append(keep, s)
		}
	}
	b.rep.Samples = keep
	if phase == "single" {
		peaks := b.rep.Peaks[:0]
		for _, p := range b.rep.Peaks {
			if p.Round != r {
				peaks = append(peaks, p)
			}
		}
		b.rep.Peaks = peaks
	}
	msg := fmt.Sprintf("%s round %d discarded and run again: %s", phase, r+1, why)
	b.rep.Incidents = append(b.rep.Incidents, msg)
	logf("%s", msg)
}

func (b *bench) singleRound(ctx context.Context, r int, ws []workload) error {
	cs := map[string]*cluster{}
	defer func() {
		for _, c := range cs {
			c.stop()
		}
		if !b.o.keep {
			os.RemoveAll(filepath.Join(b.work, fmt.Sprintf("single-r%d", r)))
		}
	}()
	var all []int
	for _, s := range order(r) {
		c, err := b.start(ctx, s, filepath.Join(b.work, fmt.Sprintf("single-r%d", r), s), 1, 30*time.Second)
		if err != nil {
			return fmt.Errorf("starting %s: %w", s, err)
		}
		cs[s] = c
		all = append(all, c.pids()...)
	}
	filled := map[string]bool{}
	for _, w := range ws {
		for _, s := range order(r) {
			c := cs[s]
			if w.Kind == "range" && !filled[s] {
				pool, err := load.Dial(ctx, c.endpoints(), 4)
				if err != nil {
					return err
				}
				err = load.Fill(ctx, pool, rangePrefix, 0, rangeKeys, b.o.shape.KeySize, b.o.shape.ValSize, 100, 4, time.Minute)
				pool.Close()
				if err != nil {
					if m := c.exitedMember(); m != nil {
						return exitOf(c, m, "filling the range keys")
					}
					return fmt.Errorf("%s: %w", s, err)
				}
				filled[s] = true
			}
			if err := b.measure(ctx, "single", r, c, w, all); err != nil {
				if m := c.exitedMember(); m != nil {
					return exitOf(c, m, w.Name)
				}
				return err
			}
			if m := c.exitedMember(); m != nil {
				return exitOf(c, m, w.Name)
			}
		}
	}
	for _, s := range order(r) {
		st := sumProc(cs[s].pids())
		b.rep.Peaks = append(b.rep.Peaks, peak{Round: r, Server: s, HWMBytes: st.HWM})
	}
	return nil
}

// clusterRounds runs the 3-member workloads, one cluster at a time. A
// server that cannot form a 3-member cluster is reported as not supporting
// it rather than failing the run.
func (b *bench) clusterRounds(ctx context.Context, ws []workload) error {
	unsupported := map[string]string{}
	for r := range b.o.rounds {
		logf("round %d/%d (3 members, order %v)", r+1, b.o.rounds, order(r))
		for _, s := range order(r) {
			if _, ok := unsupported[s]; ok {
				continue
			}
			err := b.clusterRun(ctx, r, s, ws)
			var ex *memberExit
			if errors.As(err, &ex) && ctx.Err() == nil {
				b.discardServer("cluster3", r, s, err)
				err = b.clusterRun(ctx, r, s, ws)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var nf *notFormed
				if errors.As(err, &nf) {
					logf("  %s: no 3-member cluster: %v", s, nf.err)
					unsupported[s] = nf.err.Error()
					continue
				}
				return err
			}
		}
	}
	b.rep.ClusterUnsupported = unsupported
	return nil
}

type notFormed struct{ err error }

func (e *notFormed) Error() string { return e.err.Error() }

func (b *bench) clusterRun(ctx context.Context, r int, s string, ws []workload) error {
	dir := filepath.Join(b.work, fmt.Sprintf("cluster-r%d", r), s)
	defer func() {
		if !b.o.keep {
			os.RemoveAll(dir)
		}
	}()
	c, err := b.start(ctx, s, dir, 3, b.o.clusterReady)
	if err != nil {
		return &notFormed{err}
	}
	defer c.stop()
	for _, w := range ws {
		if err := b.measure(ctx, "cluster3", r, c, w, c.pids()); err != nil {
			if m := c.exitedMember(); m != nil {
				return exitOf(c, m, w.Name)
			}
			return err
		}
		if m := c.exitedMember(); m != nil {
			return exitOf(c, m, w.Name)
		}
	}
	return nil
}

// profile captures CPU profiles during one workload on fresh servers.
func (b *bench) profile(ctx context.Context, ws []workload) error {
	var w *workload
	for i := range ws {
		if ws[i].Name == b.o.cpuprofile {
			w = &ws[i]
		}
	}
	if w == nil {
		return fmt.Errorf("-cpuprofile %q: no such workload in this run (see -list)", b.o.cpuprofile)
	}
	servers := []string{"ballast"}
	if b.o.profileEtcd {
		servers = append(servers, "etcd")
	}
	n := 1
	if strings.HasPrefix(w.Name, "3m-") {
		n = 3
	}
	d := time.Duration(b.o.profileSecs) * time.Second
	for _, s := range servers {
		dir := filepath.Join(b.work, "profile", s)
		c, err := b.start(ctx, s, dir, n, b.o.clusterReady+10*time.Second)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		err = b.profileOne(ctx, c, *w, d)
		c.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) profileOne(ctx context.Context, c *cluster, w workload, d time.Duration) error {
	pool, err := load.Dial(ctx, c.endpoints(), w.Cfg.Conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if w.Kind == "range" {
		if err := load.Fill(ctx, pool, rangePrefix, 0, rangeKeys, b.o.shape.KeySize, b.o.shape.ValSize, 100, 4, time.Minute); err != nil {
			return err
		}
	}
	path := filepath.Join(b.o.resultsDir, fmt.Sprintf("cpu-%s-%s.pprof", c.srv.Name, w.Name))
	logf("profiling %s during %s for %v into %s", c.srv.Name, w.Name, d, path)
	done := make(chan error, 1)
	go func() { done <- fetchCPUProfile(ctx, c.members[0].clientURL, d, path) }()
	// Repeat the workload until the profile is in (at most 1000 runs).
	for i := 0; i < 1000; i++ {
		select {
		case err := <-done:
			if err == nil {
				b.rep.Profiles = append(b.rep.Profiles, path)
			}
			return err
		default:
		}
		measured, cleanup, err := prepare(ctx, w, pool)
		if err != nil {
			return err
		}
		measured(ctx)
		cleanup()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return <-done
}

func locateBallast(ctx context.Context, o options) (string, error) {
	if o.ballastBin != "" {
		return o.ballastBin, nil
	}
	bin := filepath.Join(o.repo, "bin", "ballast")
	if !o.noBuild {
		logf("make build")
		cmd := exec.CommandContext(ctx, "make", "-C", o.repo, "build")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("make build: %w", err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s: %w (run make build)", bin, err)
	}
	return bin, nil
}

// locateEtcd prefers bin/etcd, then hack/tools.sh etcd when the tools script
// knows it, and otherwise builds go.etcd.io/etcd/server/v3 from this module
// into the tools cache.
func locateEtcd(ctx context.Context, o options) (string, error) {
	if o.etcdBin != "" {
		return o.etcdBin, nil
	}
	bin := filepath.Join(o.repo, "bin", "etcd")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	script := filepath.Join(o.repo, "hack", "tools.sh")
	if b, err := os.ReadFile(script); err == nil && strings.Contains(string(b), "[etcd]=") {
		logf("hack/tools.sh etcd")
		cmd := exec.CommandContext(ctx, script, "etcd")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err == nil {
			return bin, nil
		}
		logf("hack/tools.sh etcd failed; building etcd here")
	}
	cache := os.Getenv("BALLAST_TOOLS_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "ballast", "tools")
	}
	target := filepath.Join(cache, "etcd-"+etcdVersion+"-hackbench")
	if _, err := os.Stat(target); err == nil {
		return target, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	logf("building etcd %s into %s", etcdVersion, target)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", target+".tmp", "go.etcd.io/etcd/server/v3")
	cmd.Dir = filepath.Join(o.repo, "hack", "bench")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building etcd: %w", err)
	}
	return target, os.Rename(target+".tmp", target)
}
