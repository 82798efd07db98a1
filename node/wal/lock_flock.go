//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wal

import (
	"os"
	"syscall"
)

// tryLock takes an exclusive, non-blocking flock on f. flock locks belong
// to the open file description, so a second Open in the same process is
// refused just like one from another process, and the kernel drops the
// lock when the process dies (kill -9 included).
func tryLock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EWOULDBLOCK:
			return ErrLocked
		default:
			return err
		}
	}
}
