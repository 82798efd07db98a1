//go:build linux

// Package kind_test checks hack/kind/docker-shim/docker, the `docker` kind
// runs with where privileged containers cannot start, against a fake docker
// that records its arguments.
package kind_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeDocker puts a docker on PATH (after the shim) that writes its
// arguments, one per line, to the returned file.
func fakeDocker(t *testing.T) (pathEnv, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >" + argsFile + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	shim, err := filepath.Abs("docker-shim")
	if err != nil {
		t.Fatal(err)
	}
	return "PATH=" + shim + ":" + dir + ":/usr/bin:/bin", argsFile
}

func runShim(t *testing.T, pathEnv, argsFile string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("docker-shim/docker", args...)
	cmd.Env = []string{pathEnv}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shim %v: %v\n%s", args, err, out)
	}
	data, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// missingCaps are the capability numbers below cap_last_cap that this
// process's bounding set lacks: what the shim must drop.
func missingCaps(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	lastRaw, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, _ := strconv.Atoi(strings.TrimSpace(string(lastRaw)))
	n := 0
	for i := 0; i <= last && i <= 40; i++ {
		if bnd&(1<<i) == 0 {
			n++
		}
	}
	return n
}

func TestShimSpellsOutPrivileged(t *testing.T) {
	pathEnv, argsFile := fakeDocker(t)
	got := runShim(t, pathEnv, argsFile, "run", "--name", "n1", "--privileged", "--tmpfs", "/run", "kindest/node:x")

	if slices.Contains(got, "--privileged") {
		t.Fatalf("--privileged reached docker: %q", got)
	}
	if got[0] != "run" || got[1] != "--name" || got[2] != "n1" || got[len(got)-1] != "kindest/node:x" {
		t.Errorf("arguments around --privileged moved: %q", got)
	}
	i := slices.Index(got, "--cap-add")
	if i < 0 || got[i+1] != "ALL" {
		t.Fatalf("no --cap-add ALL: %q", got)
	}
	drops := 0
	for j, a := range got {
		if a == "--cap-drop" {
			drops++
			if c := got[j+1]; c == "" || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
				t.Errorf("--cap-drop %q is not a capability name: %q", c, got)
			}
		}
	}
	if want := missingCaps(t); drops != want {
		t.Errorf("%d --cap-drop flags, want %d (the capabilities missing from the bounding set): %q", drops, want, got)
	}
	for _, want := range [][2]string{{"--security-opt", "systempaths=unconfined"}, {"--device-cgroup-rule", "a *:* rwm"}, {"--tmpfs", "/run"}} {
		k := slices.Index(got, want[0])
		found := false
		for k >= 0 && k+1 < len(got) {
			if got[k+1] == want[1] {
				found = true
				break
			}
			next := slices.Index(got[k+1:], want[0])
			if next < 0 {
				break
			}
			k += 1 + next
		}
		if !found {
			t.Errorf("missing %s %s: %q", want[0], want[1], got)
		}
	}
}

func TestShimDropsPrivilegedFromExec(t *testing.T) {
	pathEnv, argsFile := fakeDocker(t)
	got := runShim(t, pathEnv, argsFile, "exec", "--privileged", "-i", "node", "cat", "/kind/version")
	if want := []string{"exec", "-i", "node", "cat", "/kind/version"}; !slices.Equal(got, want) {
		t.Errorf("docker got %q, want %q", got, want)
	}
}

func TestShimPassesOtherCommandsThrough(t *testing.T) {
	pathEnv, argsFile := fakeDocker(t)
	for _, args := range [][]string{
		{"ps", "-a", "--filter", "label=io.x-k8s.kind.cluster"},
		{"network", "inspect", "kind"},
	} {
		if got := runShim(t, pathEnv, argsFile, args...); !slices.Equal(got, args) {
			t.Errorf("docker got %q, want %q unchanged", got, args)
		}
	}
}
