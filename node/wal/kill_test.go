package wal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	killChildEnv     = "BALLAST_WAL_KILL_CHILD"
	killPageCacheEnv = "BALLAST_WAL_KILL_PAGECACHE"
)

// TestKill9 runs a writer in a child process, SIGKILLs it after a varying
// number of acknowledged Saves, and checks after each kill that every
// acknowledged entry is read back and the log continues cleanly: with
// direct writes and through the page cache.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir, os.Getenv(killPageCacheEnv) != "")
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, mode := range []string{"direct", "pagecache"} {
		t.Run(mode, func(t *testing.T) { testKill9(t, mode == "pagecache") })
	}
}

func testKill9(t *testing.T, noDirect bool) {
	dir := walDir(t)
	o := Options{SegmentSize: 8192, NoDirectIO: noDirect}
	w := mustCreate(t, dir, []byte("m"), o)
	mustClose(t, w)
	var acked uint64
	for round, kills := range []int{1, 7, 40, 3, 100, 25} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		if noDirect {
			cmd.Env = append(cmd.Env, killPageCacheEnv+"=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for n := 0; n < kills && sc.Scan(); n++ {
			if acked, err = strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64); err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
		}
		// Kill while the child is in the middle of further Saves.
		cmd.Process.Kill()
		cmd.Wait()

		w, r := mustRead(t, dir, Snapshot{}, o)
		mustClose(t, w)
		n := uint64(len(r.ents))
		if n < acked {
			t.Fatalf("round %d: %d entries survived, %d were acknowledged", round, n, acked)
		}
		for i, e := range r.ents {
			if e.GetIndex() != uint64(i+1) || string(e.Data) != payload(e.GetIndex()) {
				t.Fatalf("round %d: entry %d is %v", round, i+1, e)
			}
		}
		if r.st.GetCommit() > n {
			t.Fatalf("round %d: commit %d beyond the last entry %d", round, r.st.GetCommit(), n)
		}
	}
}

func payload(i uint64) string { return strings.Repeat(strconv.FormatUint(i%10, 10), int(i%300)) }

// killChild appends entries forever, printing each index once its Save
// returned.
func killChild(dir string, noDirect bool) {
	o := Options{SegmentSize: 8192, NoDirectIO: noDirect}
	w, err := Open(dir, Snapshot{}, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_, _, es, err := w.ReadAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	next := uint64(len(es)) + 1
	for {
		batch := []*raftpb.Entry{ent(next, 1, payload(next)), ent(next+1, 1, payload(next+1))}
		if err := w.Save(hs(1, 1, next+1), batch, true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		next += 2
		fmt.Println(next - 1)
	}
}
