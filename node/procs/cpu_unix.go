//go:build unix

package procs

import (
	"syscall"
	"time"
)

// userCPU is the user CPU time all of the process's threads have used.
// System time is left out: it is mostly the kernel's side of I/O (on a VM
// a write and fdatasync cost about as much system time as they take), not
// work that needs a P.
func userCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano()), true
}
