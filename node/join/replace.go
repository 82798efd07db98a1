package join

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
)

// ExitReplace is the exit status of a member that must be replaced: distinct
// from 1 (an error a restart may cure) and 2 (a configuration mistake), so
// that scripts can tell it apart without reading the termination log.
const ExitReplace = 3

// Reason says why a member must be replaced. It follows ReplaceMarker in the
// termination message, so that the operator knows what to do without
// parsing prose.
type Reason string

const (
	// DataLost: the cluster lists this member as started, but its data dir
	// is empty. The member must be removed and added back as a new one.
	DataLost Reason = "data-lost"
	// Removed: the cluster removed this member's ID. Its data can never be
	// used again; the member must be added back with an empty data dir.
	Removed Reason = "removed"
)

// ReplaceError stops a member that cannot go on as the member the cluster
// knows: see Reason. main turns it into the termination message and
// ExitReplace (ExitStatus).
type ReplaceError struct {
	Reason Reason
	// Detail says what happened and what the operator must do.
	Detail string
}

func (e *ReplaceError) Error() string { return e.Detail }

// Message is the termination message: ReplaceMarker, the reason, the detail.
func (e *ReplaceError) Message() string {
	return ReplaceMarker + " " + string(e.Reason) + ": " + e.Detail
}

// RemovedError is the error of a member whose ID the cluster removed.
func RemovedError(memberID, dataDir string) *ReplaceError {
	return &ReplaceError{Reason: Removed, Detail: fmt.Sprintf(
		"member %s was removed from the cluster; it cannot rejoin with its old data: delete the data dir %s and add the member again (etcdctl member add --learner)",
		memberID, dataDir)}
}

// ParseMessage reads a termination message written by a member: the reason
// it must be replaced and the detail. ok is false for any other message.
func ParseMessage(msg string) (reason Reason, detail string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(msg), ReplaceMarker)
	if !ok {
		return "", "", false
	}
	r, detail, _ := strings.Cut(strings.TrimSpace(rest), ":")
	return Reason(strings.TrimSpace(r)), strings.TrimSpace(detail), true
}

// ExitStatus is the process exit status for the error a member stopped
// with: ExitReplace for a *ReplaceError, whose message it first writes to
// the termination log (TerminationLogPath), 1 otherwise.
func ExitStatus(err error, lg *zap.Logger) int {
	var re *ReplaceError
	if !errors.As(err, &re) {
		return 1
	}
	path := TerminationLogPath(os.Getenv)
	if path == "" {
		lg.Warn("no termination log to report that this member must be replaced; set BALLAST_TERMINATION_LOG to have one",
			zap.String("message", re.Message()))
		return ExitReplace
	}
	if werr := writeTerminationLog(path, re.Message()); werr != nil {
		lg.Error("cannot write the termination log; the operator will not learn that this member must be replaced",
			zap.String("path", path), zap.Error(werr))
		return ExitReplace
	}
	lg.Info("wrote the termination message asking for this member to be replaced",
		zap.String("path", path), zap.String("reason", string(re.Reason)))
	return ExitReplace
}

// DefaultTerminationLog is where Kubernetes reads a container's termination
// message unless terminationMessagePath says otherwise.
const DefaultTerminationLog = "/dev/termination-log"

// TerminationLogPath is $BALLAST_TERMINATION_LOG, else DefaultTerminationLog
// when it exists and is writable (in a Kubernetes container), else "".
func TerminationLogPath(getenv func(string) string) string {
	if p := getenv("BALLAST_TERMINATION_LOG"); p != "" {
		return p
	}
	f, err := os.OpenFile(DefaultTerminationLog, os.O_WRONLY, 0)
	if err != nil {
		return ""
	}
	f.Close()
	return DefaultTerminationLog
}

// maxTerminationMessage is Kubernetes' limit on what it reads from the
// termination log.
const maxTerminationMessage = 4096

// writeTerminationLog replaces the file's content with msg (cut to what
// Kubernetes reads). The file is created if missing, for a path named by
// BALLAST_TERMINATION_LOG outside Kubernetes.
func writeTerminationLog(path, msg string) error {
	if len(msg) > maxTerminationMessage {
		msg = msg[:maxTerminationMessage]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(msg); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
