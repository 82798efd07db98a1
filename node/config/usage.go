package config

import (
	"strings"
)

// Usage is the help text for 'ballast node': etcd's flags, grouped as
// etcd's --help groups them, each with its default.
func Usage() string {
	r := newRegistry(Default())
	var b strings.Builder
	b.WriteString(`Usage:

  ballast node [flags]
    Start a member. Flags, ETCD_* environment variables and the config
    file use etcd's names; flags win over the environment.

  ballast node --version
    Show the etcd API version implemented and Ballast's own version.

  ballast node --config-file <path>
    Read etcd's YAML configuration file. When given, other flags and
    environment variables are ignored. Durations in the file are integer
    nanoseconds as in etcd (strings such as "10m" also work).
`)
	for _, g := range groups {
		b.WriteString("\n" + g + ":\n")
		for _, f := range r.help {
			if f.group != g {
				continue
			}
			def := r.fs.Lookup(f.name).DefValue
			b.WriteString("  --" + f.name + " '" + def + "'\n")
			b.WriteString("    " + f.usage + "\n")
		}
	}
	b.WriteString(`
Every flag can also be set as ETCD_<FLAG_NAME>, e.g. ETCD_INITIAL_CLUSTER_STATE=existing.
Deprecated etcd 3.5 --experimental-* spellings are accepted with a warning.

CAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!
`)
	return b.String()
}
