package operator

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{args: []string{"--help"}, code: 0, stdout: "--leader-elect"},
		{args: []string{"-h"}, code: 0, stdout: "--watch-namespaces"},
		{args: []string{"--bogus"}, code: 2, errs: "flag provided but not defined: -bogus"},
		{args: []string{"extra"}, code: 2, errs: `unexpected argument "extra"`},
		{args: []string{"--log-level=loud"}, code: 2, errs: "--log-level"},
		{args: []string{"--log-format=xml"}, code: 2, errs: `--log-format "xml": want json or console`},
	} {
		var out, errOut bytes.Buffer
		code := Run(tc.args, &out, &errOut)
		if code != tc.code {
			t.Errorf("Run(%q) = %d, want %d (stderr %q)", tc.args, code, tc.code, errOut.String())
		}
		if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.errs) {
			t.Errorf("Run(%q): stdout %q stderr %q; want %q and %q", tc.args, out.String(), errOut.String(), tc.stdout, tc.errs)
		}
	}
	var out bytes.Buffer
	Run([]string{"--help"}, &out, &out)
	for _, f := range []string{"--metrics-bind-address", "--health-probe-bind-address", "--leader-election-id", "--default-image", "--kubeconfig"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help does not list %s:\n%s", f, out.String())
		}
	}
}
