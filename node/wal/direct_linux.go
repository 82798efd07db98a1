//go:build linux

package wal

import "syscall"

// directFlag opens a segment for writes that bypass the page cache.
const directFlag = syscall.O_DIRECT
