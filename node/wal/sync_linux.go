//go:build linux

package wal

import (
	"os"
	"syscall"
)

// fdatasync flushes data and only the metadata needed to read it back.
// Because segments are preallocated, appends do not change the file size,
// so this avoids the inode update an fsync would add to every Save.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
