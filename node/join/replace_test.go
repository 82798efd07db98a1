package join

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, e := range []*ReplaceError{
		RemovedError("8e9e05c52164694d", "/var/lib/ballast/data"),
		{Reason: DataLost, Detail: "the cluster lists member a as started: its data was lost"},
	} {
		msg := e.Message()
		if !strings.HasPrefix(msg, ReplaceMarker) {
			t.Errorf("message %q does not start with %q", msg, ReplaceMarker)
		}
		reason, detail, ok := ParseMessage(msg)
		if !ok || reason != e.Reason || detail != e.Detail {
			t.Errorf("ParseMessage(%q) = %q, %q, %v; want %q, %q", msg, reason, detail, ok, e.Reason, e.Detail)
		}
	}
	for _, msg := range []string{"", "panic: boom", "ballast-replace-member", " " + ReplaceMarker + " removed: x\n"} {
		_, _, ok := ParseMessage(msg)
		if want := strings.Contains(msg, ReplaceMarker); ok != want {
			t.Errorf("ParseMessage(%q) ok = %v, want %v", msg, ok, want)
		}
	}
}

func TestRemovedErrorSaysWhatToDo(t *testing.T) {
	e := RemovedError("8e9e05c52164694d", "/data")
	for _, want := range []string{"8e9e05c52164694d", "was removed from the cluster", "/data", "member add"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q lacks %q", e.Error(), want)
		}
	}
}

func TestTerminationLogPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := TerminationLogPath(env(map[string]string{"BALLAST_TERMINATION_LOG": "/tmp/x"})); got != "/tmp/x" {
		t.Errorf("with BALLAST_TERMINATION_LOG: %q", got)
	}
	// Without the variable: Kubernetes' file if this process may write it.
	want := ""
	if f, err := os.OpenFile(DefaultTerminationLog, os.O_WRONLY, 0); err == nil {
		f.Close()
		want = DefaultTerminationLog
	}
	if got := TerminationLogPath(env(nil)); got != want {
		t.Errorf("without BALLAST_TERMINATION_LOG: %q, want %q", got, want)
	}
}

func TestExitStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "termination-log")
	t.Setenv("BALLAST_TERMINATION_LOG", path)
	for _, tc := range []struct {
		err  error
		code int
		log  string // expected termination log content; "" = none written
	}{
		{errors.New("disk on fire"), 1, ""},
		{fmt.Errorf("starting: %w", RemovedError("ab", "/d")), ExitReplace, RemovedError("ab", "/d").Message()},
		{&ReplaceError{Reason: DataLost, Detail: strings.Repeat("x", 5000)}, ExitReplace, (&ReplaceError{Reason: DataLost, Detail: strings.Repeat("x", 5000)}).Message()[:maxTerminationMessage]},
	} {
		os.Remove(path)
		if code := ExitStatus(tc.err, zap.NewNop()); code != tc.code {
			t.Errorf("ExitStatus(%v) = %d, want %d", tc.err, code, tc.code)
		}
		got, err := os.ReadFile(path)
		switch {
		case tc.log == "" && err == nil:
			t.Errorf("ExitStatus(%v) wrote a termination log: %q", tc.err, got)
		case tc.log != "" && string(got) != tc.log:
			t.Errorf("ExitStatus(%v) wrote %q (%v), want %q", tc.err, got, err, tc.log)
		}
	}
}
