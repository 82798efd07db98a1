package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// floorResult is the disk's write+fdatasync latency: the least any durable,
// one-write-at-a-time store can take per request on this disk.
type floorResult struct {
	Dir        string       `json:"dir"`
	Iterations int          `json:"iterations"`
	BlockBytes int          `json:"block_bytes"`
	Written    load.Summary `json:"overwrite_ms"`  // file written and synced beforehand: a pure data flush
	Fallocated load.Summary `json:"fallocated_ms"` // fallocate'd, never written: each sync also converts an extent, as in a preallocated WAL
	Direct     load.Summary `json:"direct_ms"`     // written file, O_DIRECT writes (as Ballast's WAL): the page cache left out
}

// measureFloor times iterations of a 4 KiB pwrite + fdatasync at sequential
// offsets of a preallocated file in dir, three times: on a file whose blocks
// were written and synced beforehand, on a fallocate'd one, and on a
// written one with O_DIRECT writes (skipped, left zero, where the
// filesystem refuses O_DIRECT).
func measureFloor(dir string, iterations int) (floorResult, error) {
	const block = 4096
	res := floorResult{Dir: dir, Iterations: iterations, BlockBytes: block}
	run := func(name string, prewrite, direct bool) (load.Summary, error) {
		path := filepath.Join(dir, name)
		defer os.Remove(path)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
		if err != nil {
			return load.Summary{}, err
		}
		defer f.Close()
		size := int64(iterations) * block
		if prewrite {
			if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
				return load.Summary{}, err
			}
		} else if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			return load.Summary{}, fmt.Errorf("fallocate: %w", err)
		}
		if err := f.Sync(); err != nil {
			return load.Summary{}, err
		}
		buf := alignedBlock(block)
		for i := range buf {
			buf[i] = byte(i)
		}
		w := f
		if direct {
			if w, err = os.OpenFile(path, os.O_RDWR|syscall.O_DIRECT, 0); err != nil {
				return load.Summary{}, nil
			}
			defer w.Close()
		}
		lat := make([]time.Duration, 0, iterations)
		for i := range iterations {
			t := time.Now()
			if _, err := w.WriteAt(buf, int64(i)*block); err != nil {
				return load.Summary{}, err
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				return load.Summary{}, err
			}
			lat = append(lat, time.Since(t))
		}
		return load.Summarize(lat), nil
	}
	var err error
	if res.Written, err = run("floor-written.dat", true, false); err != nil {
		return res, err
	}
	if res.Fallocated, err = run("floor-fallocated.dat", false, false); err != nil {
		return res, err
	}
	if res.Direct, err = run("floor-direct.dat", true, true); err != nil {
		return res, err
	}
	return res, nil
}

// alignedBlock returns n bytes at an address O_DIRECT accepts (4 KiB).
func alignedBlock(n int) []byte {
	b := make([]byte, n+4096)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[skip : skip+n]
}
