package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

const envPrefix = "ETCD_"

// Parse builds a member's Config from its arguments (without the program
// and subcommand names) and its environment ("KEY=value" pairs, as from
// os.Environ). Errors are *UsageError, or ErrHelp for --help. When
// PrintVersion is set the rest of the Config is not validated.
func Parse(args []string, environ []string) (*Config, error) {
	c := Default()
	r := newRegistry(c)
	if err := r.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, flagError(err)
	}
	if r.fs.NArg() > 0 {
		return nil, usageErrorf("%q is not a valid flag (flags look like --name=value)", r.fs.Arg(0))
	}
	if c.PrintVersion {
		return c, nil
	}
	cmdline := map[string]bool{}
	r.fs.Visit(func(f *flag.Flag) { cmdline[f.Name] = true })
	env := envMap(environ)

	// etcd reads ETCD_CONFIG_FILE before anything else: a config file
	// decides whether the other variables count at all.
	file := c.ConfigFile
	if file == "" {
		file = env[envPrefix+"CONFIG_FILE"]
	}
	if file != "" {
		fc, err := fromFile(file)
		if err != nil {
			return nil, err
		}
		delete(cmdline, "config-file")
		if len(cmdline) > 0 {
			fc.warn("loaded %s; the command-line flags %s are ignored because a config file is the only source when given",
				file, flagList(cmdline))
		}
		if n := countEnv(env); n > 0 {
			fc.warn("loaded %s; %d ETCD_* environment variables are ignored because a config file is the only source when given", file, n)
		}
		return fc, nil
	}

	if err := r.applyEnv(env, cmdline); err != nil {
		return nil, err
	}
	r.fs.Visit(func(f *flag.Flag) { c.ExplicitlySet[f.Name] = true })
	// etcd: listening on explicit client URLs without saying how clients
	// reach them is an error, not a silent "http://localhost:2379".
	if c.ExplicitlySet["listen-client-urls"] && !c.ExplicitlySet["advertise-client-urls"] {
		c.AdvertiseClientURLs = nil
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// applyEnv sets every flag not given on the command line from its ETCD_*
// variable. Like etcd, a variable that names a flag also given on the
// command line is an error: the operator meant one of them and we cannot
// tell which.
func (r *registry) applyEnv(env map[string]string, cmdline map[string]bool) error {
	used := map[string]bool{}
	var err error
	r.fs.VisitAll(func(f *flag.Flag) {
		key := envName(f.Name)
		val, ok := env[key]
		if !ok || err != nil || f.Name == "version" {
			return
		}
		used[key] = true
		if cmdline[f.Name] {
			err = usageErrorf("environment variable %s conflicts with the command-line flag --%s; unset the variable or drop the flag", key, f.Name)
			return
		}
		if val == "" {
			return
		}
		if serr := r.fs.Set(f.Name, val); serr != nil {
			err = usageErrorf("invalid value %q for %s: %v", val, key, serr)
		}
	})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case used[k]:
		case k == envPrefix+"VERSION":
			r.c.warn("environment variable %s cannot be set; it is ignored", k)
		case k == envPrefix+"CONFIG_FILE":
			// Read by Parse; empty here.
		default:
			r.c.warn("unrecognized environment variable %s is ignored; check its spelling against 'ballast node --help'", k)
		}
	}
	return nil
}

// finish resolves deprecated names, derives defaults that depend on other
// settings, and validates. Every source ends here.
func (r *registry) finish() error {
	c := r.c
	for _, old := range sortedKeys(r.aliases) {
		current := r.aliases[old]
		if !c.ExplicitlySet[old] {
			continue
		}
		if c.ExplicitlySet[current] {
			return usageErrorf("--%s and --%s are the same setting; drop the deprecated --%s", old, current, old)
		}
		delete(c.ExplicitlySet, old)
		c.ExplicitlySet[current] = true
		c.warn("--%s is deprecated; use --%s", old, current)
	}
	for _, name := range sortedKeys(gateFlags) {
		gate := gateFlags[name]
		if !c.ExplicitlySet[name] {
			continue
		}
		delete(c.ExplicitlySet, name)
		c.ExplicitlySet["feature-gates"] = true
		if r.gatesSet[gate] {
			return usageErrorf("--%s and --feature-gates=%s=... are the same setting; drop the deprecated --%s", name, gate, name)
		}
		c.FeatureGates[gate] = r.oldGates[gate]
		c.warn("--%s is deprecated; use --feature-gates=%s=%t", name, gate, r.oldGates[gate])
	}
	for _, name := range sortedKeys(r.inert) {
		if c.ExplicitlySet[name] {
			c.warn("--%s has no effect in Ballast (%s)", name, r.inert[name])
		}
	}
	for _, name := range sortedKeys(r.deprecated) {
		if c.ExplicitlySet[name] {
			c.warn("%s", r.deprecated[name])
		}
	}

	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	// etcd: a member renamed with --name alone bootstraps a one-member
	// cluster of itself rather than one named "default".
	if c.Name != DefaultName && c.InitialCluster == defaultInitialCluster {
		parts := make([]string, len(c.InitialAdvertisePeerURLs))
		for i := range c.InitialAdvertisePeerURLs {
			parts[i] = c.Name + "=" + c.InitialAdvertisePeerURLs[i].String()
		}
		c.InitialCluster = strings.Join(parts, ",")
	}
	var err error
	c.AutoCompactionPeriod, c.AutoCompactionRevisions, err = parseRetention(c.AutoCompactionMode, c.AutoCompactionRetention)
	if err != nil {
		return &UsageError{msg: err.Error()}
	}
	if c.QuotaBackendBytes > MaxQuotaBackendBytes {
		c.warn("--quota-backend-bytes=%d exceeds the recommended maximum of 8GiB; large backends slow snapshots and restarts", c.QuotaBackendBytes)
	}
	if c.Name == DefaultName {
		c.warn("member name is %q; set --name so members of a cluster can be told apart", DefaultName)
	}
	if c.UnsafeNoFsync {
		c.warn("--unsafe-no-fsync is set: a crash or power loss can lose acknowledged writes; never use it in production")
	}
	if err := c.Validate(); err != nil {
		return &UsageError{msg: err.Error()}
	}
	return nil
}

func (c *Config) warn(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}

// envName is etcd's variable name for a flag: ETCD_ + upper snake case.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envMap keeps the ETCD_* entries of environ; later entries win, as with
// os.Getenv on a duplicated variable.
func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) {
			m[k] = v
		}
	}
	return m
}

func countEnv(env map[string]string) int {
	n := 0
	for k := range env {
		if k != envPrefix+"CONFIG_FILE" {
			n++
		}
	}
	return n
}

func flagList(set map[string]bool) string {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, "--"+n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// readFile is the only file-system access in this package.
var readFile = os.ReadFile
