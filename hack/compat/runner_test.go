package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// step is one client interaction. Exactly one of ctl, utl or fn is set.
type step struct {
	// ctl are etcdctl arguments (the endpoint is added); utl are etcdutl
	// arguments. Both may use the {{...}} templates of env.expand.
	ctl, utl []string
	stdin    string
	// watch > 0 runs ctl as a stream: it reads that many stdout lines (or
	// until the command exits, at most watchWait) and kills it.
	watch int
	// fn drives client/v3 and returns a transcript of what it saw.
	fn   func(ctx context.Context, e *env) string
	desc string // names an fn step
	// fail says etcd is expected to fail this ctl/utl step (exit code != 0);
	// it checks the scenario itself, not Ballast.
	fail bool
	// norm is an extra normalisation of this step's output.
	norm func(string) string
}

// knownDifferences are the steps, as "<scenario>: <step>", where Ballast is known to answer
// differently from etcd, with the reason and the issue that removes the
// difference. Their diffs are logged, not failed; a listed step that stops
// differing fails, so that the list never rots.
var knownDifferences = map[string]string{
	"kv-client: client/v3: range stream":                        "KV.RangeStream is etcd 3.7's; Ballast implements the 3.6 API",
	"kv-client: client/v3: range stream with sort":              "KV.RangeStream is etcd 3.7's; Ballast implements the 3.6 API",
	`get: etcdctl get foo --prefix --stream -w json`:            "KV.RangeStream is etcd 3.7's; Ballast implements the 3.6 API",
	`get: etcdctl get "" --from-key --stream --limit 2 -w json`: "KV.RangeStream is etcd 3.7's; Ballast implements the 3.6 API",
	// etcd proposes through raft, and so raises raftIndex, where Ballast
	// answers locally: member promote of a voter, member remove/update of an
	// unknown ID.
	"maintenance: client/v3: gateway POST /v3/maintenance/status": "raftIndex: etcd proposes refused member changes through raft",
	// etcd proposes an alarm through raft for every write refused over the
	// quota; Ballast proposes it once, so its raft index grows less.
	"nospace: etcdctl endpoint status -w json": "fewer raft entries: one NOSPACE alarm proposal instead of one per refused write",
}

const watchWait = 5 * time.Second

func ctl(args ...string) step                 { return step{ctl: args} }
func ctlFail(args ...string) step             { return step{ctl: args, fail: true} }
func ctlIn(stdin string, args ...string) step { return step{ctl: args, stdin: stdin} }
func utl(args ...string) step                 { return step{utl: args} }
func watchCtl(lines int, args ...string) step {
	return step{ctl: append([]string{"watch"}, args...), watch: lines}
}
func fn(desc string, f func(ctx context.Context, e *env) string) step {
	return step{desc: desc, fn: f}
}

func (s step) String() string {
	switch {
	case s.fn != nil:
		return "client/v3: " + s.desc
	case s.utl != nil:
		return "etcdutl " + shellJoin(s.utl)
	default:
		w := ""
		if s.stdin != "" {
			in := s.stdin
			if len(in) > 200 {
				in = in[:200] + fmt.Sprintf("...(%d bytes)", len(s.stdin))
			}
			w = fmt.Sprintf(" <<< %q", in)
		}
		return "etcdctl " + shellJoin(s.ctl) + w
	}
}

// shellJoin joins args for display, quoting the ones a shell would need.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$*?") || strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 }) {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// scenario is a table of steps run in order on a fresh cluster of each kind.
type scenario struct {
	name  string
	flags []string // extra server flags, the same for both
	steps []step
}

// env is one side of a scenario: a running server, a client, and the
// normaliser that maps its identities to symbols.
type env struct {
	t       testing.TB
	srv     *server
	c       *clientv3.Client
	tmp     string
	member  uint64
	cluster uint64
	leases  []int64 // in order of appearance; symbol i+1
	// members added during the scenario, in order of appearance;
	// symbol <member-id-N> with N = i+2
	members []uint64
	// dg: the versions of the downgrade templates, once used
	// (downgrade_test.go)
	dg *downgradeVersions
}

func newEnv(t testing.TB, s *server) *env {
	t.Helper()
	c, err := s.newClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{t: t, srv: s, c: c, tmp: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ml, err := c.MemberList(ctx)
	if err != nil {
		t.Fatalf("%s: member list: %v", s.kind, err)
	}
	e.member, e.cluster = ml.Header.MemberId, ml.Header.ClusterId
	return e
}

func (e *env) addMember(id uint64) {
	if id != 0 && id != e.member && !slices.Contains(e.members, id) {
		e.members = append(e.members, id)
	}
}

func (e *env) addLease(id int64) {
	if id != 0 && !slices.Contains(e.leases, id) {
		e.leases = append(e.leases, id)
	}
}

// lease returns the ID of the n-th lease seen (1-based).
func (e *env) lease(n int) clientv3.LeaseID {
	if n < 1 || n > len(e.leases) {
		e.t.Fatalf("%s: no lease %d (have %d)", e.srv.kind, n, len(e.leases))
	}
	return clientv3.LeaseID(e.leases[n-1])
}

var templateRe = regexp.MustCompile(`\{\{(\w+)\}\}`)

// expand replaces {{leaseN}} (hex lease ID), {{member}} (hex member ID),
// {{tmp}} (scratch directory), {{client}} (client URL) and the downgrade
// versions {{cluster_version}}, {{downgrade_target}}, {{below_target}}.
func (e *env) expand(s string) string {
	return templateRe.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-2]
		switch {
		case name == "tmp":
			return e.tmp
		case name == "client":
			return e.srv.client
		case name == "member":
			return fmt.Sprintf("%x", e.member)
		case name == "cluster_version" || name == "downgrade_target" || name == "below_target":
			return e.downgradeTemplate(name)
		case strings.HasPrefix(name, "member"):
			n, err := strconv.Atoi(name[len("member"):])
			if err != nil || n < 2 || n-2 >= len(e.members) {
				e.t.Fatalf("bad template %s", m)
			}
			return fmt.Sprintf("%x", e.members[n-2])
		case strings.HasPrefix(name, "lease"):
			n, err := strconv.Atoi(name[len("lease"):])
			if err != nil {
				e.t.Fatalf("bad template %s", m)
			}
			return fmt.Sprintf("%x", int64(e.lease(n)))
		}
		e.t.Fatalf("unknown template %s", m)
		return ""
	})
}

var (
	memberAddRe = regexp.MustCompile(`Member\s+([0-9a-f]+) added`)
	grantedRe   = regexp.MustCompile(`lease ([0-9a-f]{16}) granted`)
	grantJSONRe = regexp.MustCompile(`"ID":(\d+),"TTL"`)
)

// run executes one step and returns its normalised transcript.
func (e *env) run(st step) (string, int) {
	var out string
	code := 0
	switch {
	case st.fn != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out = st.fn(ctx, e)
		cancel()
	case st.utl != nil:
		args := make([]string, len(st.utl))
		for i, a := range st.utl {
			args[i] = e.expand(a)
		}
		o, eo, c := runTool(etcdutlBin, args, e.expand(st.stdin))
		out = fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", c, o, eo)
		code = c
	default:
		args := []string{"--endpoints=" + e.srv.client}
		for _, a := range st.ctl {
			args = append(args, e.expand(a))
		}
		if st.watch > 0 {
			o, eo, end := streamTool(etcdctlBin, args, st.watch, watchWait)
			out = fmt.Sprintf("%s\n--- stdout\n%s--- stderr\n%s", end, o, eo)
		} else {
			o, eo, c := runTool(etcdctlBin, args, e.expand(st.stdin))
			out = fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", c, o, eo)
			code = c
		}
		for _, m := range grantedRe.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseUint(m[1], 16, 64)
			e.addLease(int64(id))
		}
		for _, m := range memberAddRe.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseUint(m[1], 16, 64)
			e.addMember(id)
		}
		for _, m := range grantJSONRe.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			e.addLease(id)
		}
	}
	e.sweepLeases()
	out = e.normalize(out)
	if st.norm != nil {
		out = st.norm(out)
	}
	return out, code
}

// sweepLeases registers leases that appeared without being noticed.
func (e *env) sweepLeases() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.c.Leases(ctx)
	if err != nil {
		return
	}
	var ids []int64
	for _, l := range resp.Leases {
		ids = append(ids, int64(l.ID))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		e.addLease(id)
	}
}

// Value-independent rewrites applied to every transcript.
var genericRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`"ts":"[^"]*"`), `"ts":"<ts>"`},
	// etcdctl prints member and cluster IDs with %16x (space padded)
	{regexp.MustCompile(`(Member|cluster) +<`), `$1 <`},
	{regexp.MustCompile(`etcd-endpoints://0x[0-9a-f]+`), `etcd-endpoints://<ptr>`},
	{regexp.MustCompile(`LocalAddr: '[^']*'`), `LocalAddr: '<local>'`},
	{regexp.MustCompile(`"took":"[^"]*"`), `"took":"<took>"`},
	{regexp.MustCompile(`took (\(|= |)[0-9.]+(ns|µs|us|ms|s|m)`), `took $1<took>`},
	{regexp.MustCompile(`"raft_term":\d+`), `"raft_term":<term>`},
	{regexp.MustCompile(`"raftTerm":\d+`), `"raftTerm":<term>`},
	{regexp.MustCompile(`"(raft_term|raftTerm)":"\d+"`), `"$1":"<term>"`},
	{regexp.MustCompile(`"RaftTerm" : \d+`), `"RaftTerm" : <term>`},
	{regexp.MustCompile(`raft_term:\d+`), `raft_term:<term>`},
	{regexp.MustCompile(`"dbSize":\d+`), `"dbSize":<size>`},
	{regexp.MustCompile(`"dbSizeInUse":\d+`), `"dbSizeInUse":<size>`},
	{regexp.MustCompile(`"totalSize":\d+`), `"totalSize":<size>`},
	{regexp.MustCompile(`"size":\d+`), `"size":<size>`},
	{regexp.MustCompile(`"size":"[^"]*"`), `"size":"<size>"`},
	{regexp.MustCompile(`remaining\([1-9]\d*s\)`), `remaining(<ttl>s)`},
	{regexp.MustCompile(`"ttl":[1-9]\d*`), `"ttl":<ttl>`},
	{regexp.MustCompile(`ttl=[1-9]\d*`), `ttl=<ttl>`},
	// etcdctl's tables size their columns to the widest cell, and random
	// IDs differ in width (a leading zero nibble is not printed): compare
	// tables without their padding.
	{regexp.MustCompile(`─+`), `─`},
	{regexp.MustCompile(`│ +`), `│ `},
	{regexp.MustCompile(` +│`), ` │`},
	// Ballast implements etcd's 3.6 API and schema and says so (3.6.0);
	// the baseline is etcd 3.7.x. Versions are compared as one symbol.
	{versionRe, `<api-version>`},
}

// versionRe matches the versions each server reports of itself.
var versionRe = regexp.MustCompile(`\b(3\.7\.\d+|3\.6\.0)\b`)

// normalize maps this server's identities to symbols and applies the
// generic rules.
func (e *env) normalize(s string) string {
	type sub struct{ from, to string }
	var subs []sub
	ident := func(v uint64, sym string) {
		subs = append(subs,
			sub{strconv.FormatUint(v, 10), sym},
			sub{fmt.Sprintf("%016x", v), sym},
			sub{fmt.Sprintf("%x", v), sym})
	}
	ident(e.member, "<member-id>")
	ident(e.cluster, "<cluster-id>")
	for i, id := range e.members {
		ident(id, fmt.Sprintf("<member-id-%d>", i+2))
	}
	for i, id := range e.leases {
		ident(uint64(id), fmt.Sprintf("<lease%d>", i+1))
	}
	for _, sb := range subs {
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(sb.from) + `\b`)
		s = re.ReplaceAllLiteralString(s, sb.to)
	}
	s = e.normalizeDowngrade(s)
	s = strings.ReplaceAll(s, e.tmp, "<tmp>")
	s = strings.ReplaceAll(s, e.srv.dataDir, "<data-dir>")
	s = strings.ReplaceAll(s, e.srv.client, "<client-url>")
	s = strings.ReplaceAll(s, e.srv.peer, "<peer-url>")
	s = strings.ReplaceAll(s, strings.TrimPrefix(e.srv.client, "http://"), "<client-addr>")
	s = strings.ReplaceAll(s, strings.TrimPrefix(e.srv.peer, "http://"), "<peer-addr>")
	for _, r := range genericRules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// runScenario runs sc against a fresh etcd and a fresh ballast, step by
// step, and reports every step whose transcripts differ.
func runScenario(t *testing.T, sc scenario) {
	t.Helper()
	se := newServer(t, etcd, "", sc.flags...)
	sb := newServer(t, ballast, "", sc.flags...)
	startServers(t, se, sb)
	ee, eb := newEnv(t, se), newEnv(t, sb)
	diffs := 0
	var transcript strings.Builder
	for i, st := range sc.steps {
		oe, ce := ee.run(st)
		ob, _ := eb.run(st)
		fmt.Fprintf(&transcript, "### step %d: %s\n%s", i, st, oe)
		if st.fn == nil {
			if st.fail && ce == 0 {
				t.Errorf("step %d: %s: the scenario expects etcd to fail, it succeeded:\n%s", i, st, oe)
			}
			if !st.fail && ce != 0 && st.watch == 0 {
				t.Errorf("step %d: %s: etcd failed unexpectedly (scenario bug?):\n%s", i, st, oe)
			}
		}
		known := knownDifferences[sc.name+": "+st.String()]
		switch {
		case oe != ob && known != "":
			t.Logf("step %d: %s: known difference (%s):\n%s", i, st, known, unifiedDiff("etcd", "ballast", oe, ob))
		case oe != ob:
			diffs++
			t.Errorf("step %d: %s: ballast differs from etcd:\n%s", i, st, unifiedDiff("etcd", "ballast", oe, ob))
		case known != "":
			t.Errorf("step %d: %s: listed as a known difference (%s) but Ballast now answers as etcd: remove it from knownDifferences", i, st, known)
		}
	}
	if dir := lookupTranscripts(); dir != "" {
		writeTranscript(dir, t.Name(), transcript.String())
	}
	if diffs > 0 {
		t.Logf("%d of %d steps differ", diffs, len(sc.steps))
	}
}

// COMPAT_TRANSCRIPTS names a directory that receives etcd's normalised
// transcript of every scenario (and the layout dumps), for reading.
func lookupTranscripts() string { return os.Getenv("COMPAT_TRANSCRIPTS") }

func writeTranscript(dir, name, text string) {
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name) + ".txt"
	_ = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
}
