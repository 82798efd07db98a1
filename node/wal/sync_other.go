//go:build !linux

package wal

import "os"

// fdatasync falls back to a full fsync (F_FULLFSYNC on darwin) where
// fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
