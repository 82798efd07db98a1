package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// Memory figures use keys of memKeySize bytes and values of memValSize.
const (
	memKeySize = 16
	memValSize = 32
	// flushPuts small puts after the bulk load push its large raft entries
	// out of the in-memory raft log (snapshot-count 10000 + 5000 catch-up
	// entries kept), so that the RSS with many keys is not the RSS with a
	// log of 100-put transactions.
	flushPuts = 16000
)

// memSample is one server's memory measurement.
type memSample struct {
	Round    int    `json:"round"`
	Server   string `json:"server"`
	Keys     int    `json:"keys"`
	Watchers int    `json:"watchers"`

	// Live heap after a forced GC (runtime.MemStats.HeapAlloc) and anonymous
	// RSS: at start (after a warm-up), after Keys new keys, after a second
	// revision of each, and with Watchers watchers open.
	HeapBase  int64 `json:"heap_base"`
	HeapKeys  int64 `json:"heap_keys"`
	HeapRevs  int64 `json:"heap_revs"`
	HeapWatch int64 `json:"heap_watch"`
	AnonBase  int64 `json:"rss_anon_base"`
	AnonKeys  int64 `json:"rss_anon_keys"`
	AnonRevs  int64 `json:"rss_anon_revs"`
	AnonWatch int64 `json:"rss_anon_watch"`

	HeapPerKey      float64 `json:"heap_bytes_per_key"`
	HeapPerRev      float64 `json:"heap_bytes_per_revision"`
	AnonPerKey      float64 `json:"rss_anon_bytes_per_key"`
	AnonPerRev      float64 `json:"rss_anon_bytes_per_revision"`
	HeapPer10kWatch float64 `json:"heap_bytes_per_10k_watchers"`
	AnonPer10kWatch float64 `json:"rss_anon_bytes_per_10k_watchers"`

	// With BigKeys keys (fresh server, loaded by 100-put transactions).
	BigKeys     int     `json:"big_keys"`
	BigLoadSec  float64 `json:"big_load_s"`
	BigRSS      int64   `json:"big_rss"`
	BigRssAnon  int64   `json:"big_rss_anon"`
	BigHeap     int64   `json:"big_heap"`
	BigDataDir  int64   `json:"big_data_dir_bytes"`
	BigFailures string  `json:"big_error,omitempty"`
}

// memoryRounds measures each server once (alternating order as the
// rounds do).
func (b *bench) memoryRounds(ctx context.Context) error {
	logf("memory: %d keys (%dB/%dB) + one more revision each, %d watchers; then %d keys on a fresh member",
		b.o.memKeys, memKeySize, memValSize, b.o.memWatchers, b.o.memBigKeys)
	for _, s := range order(0) {
		ms, err := b.memoryOne(ctx, s)
		if err != nil {
			return fmt.Errorf("memory %s: %w", s, err)
		}
		b.rep.Memory = append(b.rep.Memory, ms)
	}
	return nil
}

// settle waits for background work to end, then reads the live heap and
// the anonymous RSS.
func settle(ctx context.Context, c *cluster) (heap, anon int64, err error) {
	waitQuiet(ctx, c.pids(), 5*time.Second)
	heap, err = heapAfterGC(ctx, c.members[0].clientURL)
	if err != nil {
		return 0, 0, err
	}
	return heap, sumProc(c.pids()).RssAnon, nil
}

func (b *bench) memoryOne(ctx context.Context, s string) (memSample, error) {
	ms := memSample{Server: s, Keys: b.o.memKeys, Watchers: b.o.memWatchers}
	dir := filepath.Join(b.work, "memory", s)
	defer func() {
		if !b.o.keep {
			os.RemoveAll(filepath.Join(b.work, "memory", s))
		}
	}()
	c, err := b.start(ctx, s, dir, 1, 30*time.Second)
	if err != nil {
		return ms, err
	}
	defer c.stop()
	pool, err := load.Dial(ctx, c.endpoints(), 10)
	if err != nil {
		return ms, err
	}
	defer pool.Close()
	put := func(prefix string, n, space int) error {
		cfg := load.Config{Conns: 10, Clients: 100, Total: n, MaxDuration: 5 * time.Minute,
			KeySize: memKeySize, ValSize: memValSize, KeySpace: space, SeqKeys: true}
		t := time.Now()
		r := load.Put(ctx, cfg, pool, prefix)
		if r.Errors > 0 || r.Requests < n {
			return fmt.Errorf("put %d keys under %s: %d done, %d errors (first: %s)", n, prefix, r.Requests, r.Errors, r.FirstError)
		}
		logf("  %-7s %d puts in %.1fs", s, n, time.Since(t).Seconds())
		return nil
	}
	// Warm up before the baseline: gRPC buffers, backend commits, and above
	// all the in-memory raft log, which after flushPuts puts of the same
	// size holds as many entries (between the snapshot's catch-up entries
	// and snapshot-count more) as after the loads below; the puts go to one
	// key, so they add a single key to the index.
	if err := put("w/", flushPuts, 1); err != nil {
		return ms, err
	}
	if ms.HeapBase, ms.AnonBase, err = settle(ctx, c); err != nil {
		return ms, err
	}
	if err := put("m/", b.o.memKeys, b.o.memKeys); err != nil {
		return ms, err
	}
	if ms.HeapKeys, ms.AnonKeys, err = settle(ctx, c); err != nil {
		return ms, err
	}
	if err := put("m/", b.o.memKeys, b.o.memKeys); err != nil { // the same keys again: one more revision each
		return ms, err
	}
	if ms.HeapRevs, ms.AnonRevs, err = settle(ctx, c); err != nil {
		return ms, err
	}
	t := time.Now()
	release, err := load.HoldWatchers(ctx, pool, "wm/", 100, b.o.memWatchers)
	if err != nil {
		return ms, fmt.Errorf("%d watchers: %w", b.o.memWatchers, err)
	}
	logf("  %-7s %d watchers open in %.1fs", s, b.o.memWatchers, time.Since(t).Seconds())
	ms.HeapWatch, ms.AnonWatch, err = settle(ctx, c)
	release()
	if err != nil {
		return ms, err
	}
	n := float64(b.o.memKeys)
	ms.HeapPerKey = float64(ms.HeapKeys-ms.HeapBase) / n
	ms.HeapPerRev = float64(ms.HeapRevs-ms.HeapKeys) / n
	ms.AnonPerKey = float64(ms.AnonKeys-ms.AnonBase) / n
	ms.AnonPerRev = float64(ms.AnonRevs-ms.AnonKeys) / n
	w := float64(b.o.memWatchers) / 10000
	ms.HeapPer10kWatch = float64(ms.HeapWatch-ms.HeapRevs) / w
	ms.AnonPer10kWatch = float64(ms.AnonWatch-ms.AnonRevs) / w
	logf("  %-7s heap/key %.0f B, heap/revision %.0f B, heap per 10k watchers %.1f MB",
		s, ms.HeapPerKey, ms.HeapPerRev, ms.HeapPer10kWatch/(1<<20))
	pool.Close()
	c.stop()

	// Many keys, on a fresh member.
	ms.BigKeys = b.o.memBigKeys
	if err := b.memoryBig(ctx, s, &ms); err != nil {
		if ctx.Err() != nil {
			return ms, ctx.Err()
		}
		ms.BigFailures = err.Error()
		logf("  %-7s %d keys: %v", s, ms.BigKeys, err)
	}
	return ms, nil
}

func (b *bench) memoryBig(ctx context.Context, s string, ms *memSample) error {
	dir := filepath.Join(b.work, "memory-big", s)
	defer func() {
		if !b.o.keep {
			os.RemoveAll(dir)
		}
	}()
	c, err := b.start(ctx, s, dir, 1, 30*time.Second)
	if err != nil {
		return err
	}
	defer c.stop()
	pool, err := load.Dial(ctx, c.endpoints(), 8)
	if err != nil {
		return err
	}
	defer pool.Close()
	t := time.Now()
	if err := load.Fill(ctx, pool, "k/", 0, ms.BigKeys, memKeySize, memValSize, 100, 16, 5*time.Minute); err != nil {
		return err
	}
	ms.BigLoadSec = time.Since(t).Seconds()
	cfg := load.Config{Conns: 8, Clients: 64, Total: flushPuts, MaxDuration: 2 * time.Minute, KeySize: memKeySize, ValSize: memValSize, KeySpace: 1}
	if r := load.Put(ctx, cfg, pool, "flush/"); r.Errors > 0 || r.Requests < flushPuts {
		return fmt.Errorf("flush puts: %d done, first error: %s", r.Requests, r.FirstError)
	}
	heap, _, err := settle(ctx, c)
	if err != nil {
		return err
	}
	st := sumProc(c.pids())
	ms.BigHeap, ms.BigRSS, ms.BigRssAnon = heap, st.RSS, st.RssAnon
	ms.BigDataDir = dirSize(c.members[0].dataDir)
	logf("  %-7s %d keys loaded in %.1fs: RSS %.0f MB (anon %.0f MB), heap %.0f MB, data dir %.0f MB",
		s, ms.BigKeys, ms.BigLoadSec, mb(ms.BigRSS), mb(ms.BigRssAnon), mb(ms.BigHeap), mb(ms.BigDataDir))
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// dirSize is the allocated size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
