package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestKill9LosesNoAcknowledgedWrite writes concurrently, kills the member
// with SIGKILL at a random moment, restarts it, and checks that every write
// the client saw acknowledged is there with its value. Repeated, with raft
// snapshots and WAL release happening in between (small --snapshot-count).
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	m := startMember(t, withArgs("--snapshot-count", "300"))
	acked := map[string]string{}
	var mu sync.Mutex
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for round := 0; round < rounds; round++ {
		c := m.clientv3()
		mu.Lock()
		killAt := len(acked) + 200 // kill once this round has 200 acknowledged writes
		mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var writes sync.WaitGroup
		writes.Add(1)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					k := fmt.Sprintf("r%d/w%d/%06d", round, w, i)
					v := fmt.Sprintf("v-%d-%d-%d", round, w, i)
					cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := c.Put(cctx, k, v)
					ccancel()
					if err != nil {
						return // the member died or the round ended
					}
					mu.Lock()
					acked[k] = v
					n := len(acked)
					mu.Unlock()
					if n == killAt {
						writes.Done() // enough writes in flight: time to kill
					}
					if i >= 5000 {
						return // bounded load
					}
				}
			}(w)
		}
		waitOrFail(t, &writes, 60*time.Second, "writers made no progress")
		// Kill at a random moment while the writers are still going.
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond) // randomises the kill point; not used for synchronisation
		m.kill()
		cancel()
		wg.Wait()
		c.Close()

		m.restart()
		c = m.clientv3()
		mu.Lock()
		checkAll(t, c, acked, "r")
		mu.Unlock()
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, d time.Duration, msg string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal(msg)
	}
}

// checkAll reads every acknowledged key back and fails on any loss.
func checkAll(t *testing.T, c *clientv3.Client, acked map[string]string, prefix string) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	resp, err := c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	var lost []string
	for k, v := range acked {
		if got[k] != v {
			lost = append(lost, fmt.Sprintf("%s (want %q, got %q)", k, v, got[k]))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		if len(lost) > 10 {
			lost = append(lost[:10], "…")
		}
		t.Fatalf("%d acknowledged writes lost after kill -9: %s", len(lost), strings.Join(lost, ", "))
	}
	t.Logf("all %d acknowledged writes present after restart", len(acked))
}

// TestCorruptWALRefusesToStart flips a byte in the middle of the WAL: the
// member must refuse to start and name the file and offset.
func TestCorruptWALRefusesToStart(t *testing.T) {
	m := startMember(t)
	c := m.clientv3()
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 50; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%03d", i), strings.Repeat("x", 100)); err != nil {
			t.Fatal(err)
		}
	}
	m.stop()

	seg := newestSegment(t, filepath.Join(m.dataDir, "member", "wal"))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside a value in the middle of the written records.
	idx := strings.Index(string(data), strings.Repeat("x", 100))
	if idx < 0 {
		t.Fatal("no entry payload found in the WAL")
	}
	data[idx+50] ^= 0xff
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.launch(); err != nil {
		t.Fatal(err)
	}
	log, exitErr := m.waitExit(30 * time.Second)
	if exitErr == nil {
		t.Fatalf("ballast started on a corrupted WAL; log:\n%s", log)
	}
	if !strings.Contains(log, filepath.Base(seg)) || !strings.Contains(log, "offset") {
		t.Fatalf("the error does not name the WAL file and offset; log:\n%s", log)
	}
}

// TestTornWALTailIsRepaired cuts the last WAL record in half, as a crash in
// the middle of a write leaves it: the member repairs the tail and starts,
// with every write before the torn one.
func TestTornWALTailIsRepaired(t *testing.T) {
	// The backend must not commit the torn entry on its own before the kill:
	// in a real crash a torn record was never acknowledged, so never applied.
	m := startMember(t, withArgs("--backend-batch-interval", "1h", "--backend-batch-limit", "1000000"))
	c := m.clientv3()
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 20; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	const marker = "torn-tail-marker-value"
	if _, err := c.Put(ctx, "last", marker); err != nil {
		t.Fatal(err)
	}
	m.kill()

	seg := newestSegment(t, filepath.Join(m.dataDir, "member", "wal"))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	idx := strings.LastIndex(string(data), marker)
	if idx < 0 {
		t.Fatal("last write not found in the WAL")
	}
	// Zero everything from the middle of the last value on: a torn write.
	for i := idx + len(marker)/2; i < len(data); i++ {
		data[i] = 0
	}
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m.restart()
	c = m.clientv3()
	resp, err := c.Get(ctxT(t, 10*time.Second), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 20 {
		t.Fatalf("after tail repair %d keys, want the 20 written before the torn record", resp.Count)
	}
	if !strings.Contains(m.logText(), "torn") && !strings.Contains(m.logText(), "repair") {
		t.Logf("log:\n%s", m.logText())
		t.Errorf("the repair was not logged")
	}
}

func newestSegment(t *testing.T, dir string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no WAL segments in %s: %v", dir, err)
	}
	sort.Strings(matches)
	return matches[len(matches)-1]
}
