//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package wal

import "os"

// tryLock is a no-op where flock is unavailable: the single-opener rule is
// then not enforced.
func tryLock(*os.File) error { return nil }
