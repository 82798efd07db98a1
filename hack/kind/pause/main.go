//go:build linux

// Command pause is the pod sandbox ("infra") container of the kind node
// image, in place of registry.k8s.io/pause, which cannot be pulled here. It
// holds the pod's namespaces open by existing, reaps the zombies of a pod
// that shares its process namespace (it is PID 1 there), and exits when told
// to stop: what the upstream pause program does, in Go.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (ballast kind node image)")
		return
	}
	if os.Getpid() != 1 {
		// Upstream's pause warns too: outside PID 1 it cannot reap orphans.
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1, orphaned processes will not be reaped")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking; one SIGCHLD may stand
// for several exits.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
