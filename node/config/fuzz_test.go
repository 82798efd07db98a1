package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary argument lists (NUL-separated) and environments
// (newline-separated) to Parse. Parse must never panic, must fail only with
// a *UsageError or ErrHelp, and whatever it accepts must validate.
func FuzzParse(f *testing.F) {
	f.Add("--name=a\x00--data-dir\x00/d", "ETCD_INITIAL_CLUSTER_STATE=existing")
	f.Add("--listen-client-urls=https://127.0.0.1:2379\x00--advertise-client-urls=https://h:2379", "")
	f.Add("--initial-cluster=a=http://x:1,b=unix://s\x00--name=b", "ETCD_FOO=1")
	f.Add("--auto-compaction-mode=revision\x00--auto-compaction-retention=10", "ETCD_HEARTBEAT_INTERVAL=10")
	f.Add("--feature-gates=AllAlpha=true,LeaseCheckpoint=false\x00--experimental-initial-corrupt-check", "")
	f.Add("--version", "")
	f.Add("-h", "")
	f.Fuzz(func(t *testing.T, args, env string) {
		var argv, environ []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		for _, kv := range strings.Split(env, "\n") {
			// Never let the fuzzer choose a config file: Parse would read it.
			if kv != "" && !strings.HasPrefix(kv, "ETCD_CONFIG_FILE") {
				environ = append(environ, kv)
			}
		}
		for _, a := range argv {
			if strings.Contains(strings.TrimLeft(a, "-"), "config-file") {
				return
			}
		}
		c, err := Parse(argv, environ)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) && !errors.Is(err, ErrHelp) {
				t.Fatalf("Parse(%q, %q): unexpected error type %T: %v", argv, environ, err, err)
			}
			if err.Error() == "" {
				t.Fatalf("Parse(%q, %q): empty error message", argv, environ)
			}
			return
		}
		if c.PrintVersion {
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Parse(%q, %q) accepted a config that does not validate: %v", argv, environ, verr)
		}
		if c.DataDir == "" {
			t.Fatalf("Parse(%q, %q): empty DataDir", argv, environ)
		}
	})
}
