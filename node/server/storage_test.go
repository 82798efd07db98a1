package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap/zaptest"

	"github.com/ballastdb/ballast/node/snap"
	"github.com/ballastdb/ballast/node/wal"
)

func testOptions(t *testing.T, dir string) Options {
	return Options{
		Name:              "m1",
		DataDir:           dir,
		InitialCluster:    map[string][]string{"m1": {"http://127.0.0.1:1"}},
		AdvertisePeerURLs: []string{"http://127.0.0.1:1"},
		TickInterval:      10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
		Logger:            zaptest.NewLogger(t),
	}
}

func startTestServer(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestartAfterCrashBetweenSnapshotMarkerAndFile: a crash after the
// WAL's snapshot marker is written and before the snapshot file is leaves a
// member that still starts, with all its data.
func TestRestartAfterCrashBetweenSnapshotMarkerAndFile(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	s := startTestServer(t, o)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := s.Put(ctx, &pb.PutRequest{Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	applied := s.appliedIndex.Load()
	term := s.rn.Term()
	s.Stop()

	// The crash: the marker reached the WAL, the snapshot file did not.
	if _, err := snap.LoadNewest(filepath.Join(dir, "member", "snap")); !errors.Is(err, snap.ErrNoSnapshot) {
		t.Fatalf("expected no snapshot file yet, got %v", err)
	}
	w, err := wal.Open(filepath.Join(dir, "member", "wal"), wal.Snapshot{}, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(wal.Snapshot{Index: applied, Term: term}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	s = startTestServer(t, o)
	defer s.Stop()
	resp, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 20 {
		t.Fatalf("after restart %d keys, want 20", resp.Count)
	}
}
