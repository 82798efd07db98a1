package main

import (
	"bytes"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/config"
)

func TestRun(t *testing.T) {
	versionRE := regexp.MustCompile(`^etcd Version: 3\.6\.0
Ballast Version: \S+
Git SHA: .+
Go Version: go\S+
Go OS/Arch: \w+/\w+
$`)
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // regexp
		stderr     string // substring
		wantStdout bool
	}{
		{args: []string{"version"}, code: 0, stdout: versionRE.String()},
		{args: []string{"node", "--version"}, code: 0, stdout: versionRE.String()},
		{args: []string{"node", "-version"}, code: 0, stdout: versionRE.String()},
		{args: []string{"help"}, code: 0, stdout: `(?s)ballast node \[flags\].*ballast version`},
		{args: []string{"node", "--help"}, code: 0, stdout: `(?s)Member:.*--name 'default'.*Clustering:`},
		{args: nil, code: 2, stderr: "Usage:"},
		{args: []string{"nodes"}, code: 2, stderr: `unknown command "nodes"`},
		{args: []string{"node", "--bogus"}, code: 2, stderr: "unknown flag --bogus\nsee 'ballast node --help'"},
		{args: []string{"node", "--election-timeout=10"}, code: 2, stderr: "at least 5 times"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, nil, &out, &errOut)
		if code != tc.code {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tc.args, code, tc.code, errOut.String())
		}
		if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(out.String()) {
			t.Errorf("run(%q) stdout = %q, want match %q", tc.args, out.String(), tc.stdout)
		}
		if tc.stderr != "" && !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("run(%q) stderr = %q, want %q", tc.args, errOut.String(), tc.stderr)
		}
	}
}

func TestLoggerFields(t *testing.T) {
	var errOut bytes.Buffer
	lg, err := newLogger(mustConfig(t), &errOut)
	if err != nil {
		t.Fatal(err)
	}
	lg.Info("hello")
	line := errOut.String()
	for _, key := range []string{`"level":"info"`, `"ts":"`, `"caller":"`, `"msg":"hello"`} {
		if !strings.Contains(line, key) {
			t.Errorf("log line %q lacks %s", line, key)
		}
	}
	lg.Debug("hidden")
	if strings.Contains(errOut.String(), "hidden") {
		t.Error("debug line logged at info level")
	}
}

func mustConfig(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]string{"--name=t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCommandArgs: invoked as "etcd", the binary is "ballast node".
func TestCommandArgs(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/usr/local/bin/ballast", "node", "--name=a"}, "node --name=a"},
		{[]string{"/tmp/assets/etcd", "--data-dir=/d", "--unsafe-no-fsync=true"}, "node --data-dir=/d --unsafe-no-fsync=true"},
		{[]string{"etcd"}, "node"},
		{[]string{"etcd.exe", "--version"}, "node --version"},
		{[]string{"/bin/etcdctl", "get"}, "get"},
		{nil, ""},
	} {
		if got := strings.Join(commandArgs(tc.argv), " "); got != tc.want {
			t.Errorf("commandArgs(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

// TestGCTunerFollowsLiveHeap: the GC percent is 200 while the live heap is
// small and 100 once it is large, and back.
func TestGCTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	gcTuner{}.start()
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	// The tuner runs in a finalizer after each collection: collect until
	// it has seen the heap (bounded).
	await := func(want int) {
		t.Helper()
		for i := 0; i < 50 && percent() != want; i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs after the cycle
		}
		if got := percent(); got != want {
			t.Fatalf("GC percent %d, want %d (live heap %d MiB)", got, want, liveHeapBytes()>>20)
		}
	}
	await(smallHeapGCPercent)
	func() {
		big := make([]byte, largeHeapBytes+(16<<20))
		for i := range big {
			big[i] = 1
		}
		await(largeHeapGCPercent)
		runtime.KeepAlive(big)
	}()
	await(smallHeapGCPercent)
}
