package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// ExitUsage is the exit status for a configuration the operator must fix,
// the status Go's flag package and etcd use for bad flags.
const ExitUsage = 2

// ErrHelp is returned by Parse for -h, -help and --help; print Usage and
// exit 0.
var ErrHelp = flag.ErrHelp

// UsageError is a configuration mistake: an unknown flag, a bad value, or a
// combination that cannot work. Its message names the flag (or variable, or
// file key) and what to change.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// ExitCode is the process exit status for the error.
func (e *UsageError) ExitCode() int { return ExitUsage }

func usageErrorf(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

var (
	errExpectBool = errors.New("expected true or false")
	errExpectUint = errors.New("expected a non-negative whole number")
	errExpectInt  = errors.New("expected a whole number")
)

// flagError rewrites the flag package's messages to name flags the way
// etcd's documentation writes them (--name, not -name).
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return usageErrorf("unknown flag --%s", strings.TrimLeft(name, "-"))
	}
	for _, p := range []string{"for flag -", "for -", "argument: -"} {
		msg = strings.Replace(msg, p, p+"-", 1)
	}
	return &UsageError{msg: msg}
}
