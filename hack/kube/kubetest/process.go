package kubetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child program whose combined output is kept in memory and in
// LogPath, so a test can wait for a log line and show the log on failure.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd

	mu      sync.Mutex
	log     bytes.Buffer
	changed chan struct{} // closed and replaced on every new line

	exited  chan struct{}
	exitErr error // set before exited is closed
}

// startProcess starts bin with args and registers a cleanup that stops it
// (SIGTERM, then SIGKILL after 15s).
func startProcess(t testing.TB, name, logDir, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{
		Name:    name,
		LogPath: filepath.Join(logDir, name+".log"),
		changed: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	f, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	pr, pw := io.Pipe()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			p.mu.Lock()
			p.log.WriteString(line)
			p.log.WriteByte('\n')
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr) // after an over-long line: keep the child unblocked
	}()
	go func() {
		p.exitErr = p.cmd.Wait()
		pw.Close()
		<-readerDone
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Stop sends SIGTERM, waits up to 15s, then SIGKILLs. It returns once the
// process is gone; calling it again is harmless.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Exited is closed when the process has exited; ExitErr is then valid.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit status once Exited is closed.
func (p *Process) ExitErr() error {
	<-p.exited
	return p.exitErr
}

// Log is everything the process has written so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Tail is the last n lines of the log.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLog waits until the log contains substr, the process exits or d passes.
func (p *Process) WaitLog(substr string, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		found := strings.Contains(p.log.String(), substr)
		changed := p.changed
		p.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-p.exited:
			if strings.Contains(p.Log(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before logging %q", p.Name, p.exitErr, substr)
		case <-timer.C:
			return fmt.Errorf("%s did not log %q within %v", p.Name, substr, d)
		}
	}
}
