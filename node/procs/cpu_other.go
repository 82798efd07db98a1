//go:build !unix

package procs

import "time"

// userCPU has no portable source here: the tuner stays off.
func userCPU() (time.Duration, bool) { return 0, false }
