package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate reports the first setting that cannot work, naming the flag and
// what to change. It does not modify c and reads no files: certificates are
// checked for presence only, when the listeners are built.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("--data-dir is empty; set it or leave it unset for '${name}.etcd'")
	}
	for _, l := range []struct {
		flag string
		urls []url.URL
	}{
		{"listen-client-urls", c.ListenClientURLs},
		{"listen-client-http-urls", c.ListenClientHTTPURLs},
		{"listen-peer-urls", c.ListenPeerURLs},
		{"listen-metrics-urls", c.ListenMetricsURLs},
	} {
		if err := checkBindURLs(l.urls); err != nil {
			return fmt.Errorf("--%s: %w", l.flag, err)
		}
	}
	for _, a := range []struct {
		flag string
		urls []url.URL
	}{
		{"advertise-client-urls", c.AdvertiseClientURLs},
		{"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs},
		{"join-endpoints", c.JoinEndpoints},
	} {
		if err := checkHostURLs(a.urls); err != nil {
			return fmt.Errorf("--%s: %w", a.flag, err)
		}
	}
	if len(c.ListenClientURLs) > 0 && len(c.AdvertiseClientURLs) == 0 {
		return errors.New("--advertise-client-urls is required when --listen-client-urls is set explicitly")
	}
	if c.InitialClusterState != ClusterStateNew && c.InitialClusterState != ClusterStateExisting {
		return fmt.Errorf("--initial-cluster-state must be %q or %q, not %q", ClusterStateNew, ClusterStateExisting, c.InitialClusterState)
	}
	if _, err := c.InitialClusterMembers(); err != nil {
		return err
	}

	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("--heartbeat-interval must be >0 (set to %dms)", c.HeartbeatInterval.Milliseconds())
	}
	if c.ElectionTimeout <= 0 {
		return fmt.Errorf("--election-timeout must be >0 (set to %dms)", c.ElectionTimeout.Milliseconds())
	}
	// raft counts in heartbeat ticks: fewer than 5 per election timeout
	// makes elections fire on ordinary jitter.
	if c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("--election-timeout[%dms] should be at least 5 times --heartbeat-interval[%dms]",
			c.ElectionTimeout.Milliseconds(), c.HeartbeatInterval.Milliseconds())
	}
	if c.ElectionTimeout > maxElectionTimeout {
		return fmt.Errorf("--election-timeout[%dms] is too long; it must be at most %dms",
			c.ElectionTimeout.Milliseconds(), maxElectionTimeout.Milliseconds())
	}
	if c.MaxRequestBytes == 0 {
		return errors.New("--max-request-bytes must be >0")
	}
	if c.MaxLearners < 0 {
		return fmt.Errorf("--max-learners must be >=0 (set to %d)", c.MaxLearners)
	}
	if c.CompactHashCheckTime <= 0 {
		return fmt.Errorf("--compact-hash-check-time must be >0 (set to %v)", c.CompactHashCheckTime)
	}
	if _, _, err := parseRetention(c.AutoCompactionMode, c.AutoCompactionRetention); err != nil {
		return err
	}
	if c.BackendFreelistType != "map" && c.BackendFreelistType != "array" {
		return fmt.Errorf("--backend-bbolt-freelist-type must be map or array, not %q", c.BackendFreelistType)
	}

	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.validateLogging(); err != nil {
		return err
	}
	if c.Metrics != "basic" && c.Metrics != "extensive" {
		return fmt.Errorf("--metrics must be basic or extensive, not %q", c.Metrics)
	}
	for name := range c.FeatureGates {
		if _, ok := knownFeatures[name]; !ok && name != "AllAlpha" && name != "AllBeta" {
			return fmt.Errorf("--feature-gates: unrecognized feature gate: %s", name)
		}
	}
	if c.FeatureEnabled(FeatureLeaseCheckpointPersist) && !c.FeatureEnabled(FeatureLeaseCheckpoint) {
		return errors.New("--feature-gates: LeaseCheckpointPersist requires LeaseCheckpoint=true")
	}
	return nil
}

// checkBindURLs: a listener binds an IP address (or localhost), never a
// name that DNS could move.
func checkBindURLs(us []url.URL) error {
	for i := range us {
		u := &us[i]
		if err := checkURL(u); err != nil {
			return err
		}
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			continue
		}
		host, _, _ := net.SplitHostPort(u.Host)
		if host != "" && host != "localhost" && net.ParseIP(host) == nil {
			return fmt.Errorf("expected an IP address in URL for binding (%s); listen on an address and advertise the name", u.String())
		}
	}
	return nil
}

// checkHostURLs: an advertised URL must tell others where to connect.
func checkHostURLs(us []url.URL) error {
	for i := range us {
		u := &us[i]
		if err := checkURL(u); err != nil {
			return err
		}
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			continue
		}
		if host, _, _ := net.SplitHostPort(u.Host); host == "" {
			return fmt.Errorf("URL %s has no host; advertise a host name or address others can reach", u.String())
		}
	}
	return nil
}

// Member is one entry of --initial-cluster.
type Member struct {
	Name     string
	PeerURLs []url.URL
}

// InitialClusterMembers parses --initial-cluster ("a=http://h1:2380,
// b=http://h2:2380,a=http://h1b:2380"): a name listed twice has several peer
// URLs. Members come back in first-seen order.
func (c *Config) InitialClusterMembers() ([]Member, error) {
	if strings.TrimSpace(c.InitialCluster) == "" {
		return nil, nil
	}
	var ms []Member
	seen := map[string]string{}
	for entry := range strings.SplitSeq(c.InitialCluster, ",") {
		name, raw, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("--initial-cluster: entry %q must be name=peerURL", entry)
		}
		u, err := parseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("--initial-cluster: member %s: %w", name, err)
		}
		if other, dup := seen[u.String()]; dup {
			return nil, fmt.Errorf("--initial-cluster: peer URL %s is listed for both %s and %s", u, other, name)
		}
		seen[u.String()] = name
		i := slices.IndexFunc(ms, func(m Member) bool { return m.Name == name })
		if i < 0 {
			ms = append(ms, Member{Name: name})
			i = len(ms) - 1
		}
		ms[i].PeerURLs = append(ms[i].PeerURLs, *u)
	}
	return ms, nil
}

// parseRetention interprets --auto-compaction-retention. Periodic: a
// duration, or a bare number of hours (etcd's rule). Revision: a count. Zero
// disables auto compaction in both modes.
func parseRetention(mode, s string) (period time.Duration, revs int64, err error) {
	s = strings.TrimSpace(s)
	switch mode {
	case CompactionModePeriodic:
		if h, perr := strconv.ParseInt(s, 10, 64); perr == nil {
			if h < 0 || h > int64(time.Duration(1<<63-1)/time.Hour) {
				return 0, 0, fmt.Errorf("--auto-compaction-retention=%s is out of range", s)
			}
			return time.Duration(h) * time.Hour, 0, nil
		}
		d, perr := time.ParseDuration(s)
		if perr != nil || d < 0 {
			return 0, 0, fmt.Errorf("--auto-compaction-retention=%q is not a duration (e.g. 30m, 1h) or a number of hours", s)
		}
		return d, 0, nil
	case CompactionModeRevision:
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, fmt.Errorf("--auto-compaction-retention=%q must be a number of revisions in revision mode", s)
		}
		return 0, n, nil
	}
	return 0, 0, fmt.Errorf("--auto-compaction-mode must be periodic or revision, not %q", mode)
}

func (c *Config) validateTLS() error {
	for _, side := range []struct {
		what, prefix string
		info         *TLSInfo
		urls         [][]url.URL
	}{
		{"client", "", &c.ClientTLS, [][]url.URL{c.ListenClientURLs, c.ListenClientHTTPURLs, c.ListenMetricsURLs}},
		{"peer", "peer-", &c.PeerTLS, [][]url.URL{c.ListenPeerURLs}},
	} {
		t := side.info
		if (t.CertFile == "") != (t.KeyFile == "") {
			return fmt.Errorf("--%scert-file and --%skey-file must be given together", side.prefix, side.prefix)
		}
		if (t.ClientCertFile == "") != (t.ClientKeyFile == "") {
			return fmt.Errorf("--%sclient-cert-file and --%sclient-key-file must be given together", side.prefix, side.prefix)
		}
		for _, us := range side.urls {
			for i := range us {
				if s := us[i].Scheme; (s == "https" || s == "unixs") && t.Empty() && !t.AutoTLS {
					return fmt.Errorf("%s URL %s uses TLS but no certificate is configured; set --%scert-file and --%skey-file (or --%sauto-tls)",
						side.what, us[i].String(), side.prefix, side.prefix, side.prefix)
				}
			}
		}
	}
	minV, err := TLSVersion(c.TLSMinVersion)
	if err != nil {
		return fmt.Errorf("--tls-min-version: %w", err)
	}
	maxV, err := TLSVersion(c.TLSMaxVersion)
	if err != nil {
		return fmt.Errorf("--tls-max-version: %w", err)
	}
	if maxV != 0 && minV > maxV {
		return fmt.Errorf("--tls-min-version (%s) is greater than --tls-max-version (%s)", c.TLSMinVersion, c.TLSMaxVersion)
	}
	if minV == tls.VersionTLS13 && len(c.CipherSuites) > 0 {
		return errors.New("--cipher-suites cannot be configured when only TLS1.3 is enabled (Go chooses TLS 1.3 suites itself)")
	}
	for _, name := range c.CipherSuites {
		if _, ok := CipherSuite(name); !ok {
			return fmt.Errorf("--cipher-suites: unknown cipher suite %q", name)
		}
	}
	return nil
}

// TLSVersion maps etcd's TLS version names to crypto/tls constants; "" lets
// Go decide.
func TLSVersion(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (must be one of: TLS1.2, TLS1.3)", s)
}

// CipherSuite returns the crypto/tls ID of a cipher suite by its IANA name
// (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), as --cipher-suites takes it.
func CipherSuite(name string) (uint16, bool) {
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, cs := range list {
			if cs.Name == name {
				return cs.ID, true
			}
		}
	}
	return 0, false
}

func (c *Config) validateAuth() error {
	kind, _, _ := strings.Cut(c.AuthToken, ",")
	if kind != "simple" && kind != "jwt" {
		return fmt.Errorf("--auth-token must be 'simple' or 'jwt,<options>', not %q", c.AuthToken)
	}
	// bcrypt's own bounds (golang.org/x/crypto/bcrypt MinCost..MaxCost).
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		return fmt.Errorf("--bcrypt-cost must be between 4 and 31, not %d", c.BcryptCost)
	}
	return nil
}

func (c *Config) validateLogging() error {
	if c.Logger != "zap" {
		return fmt.Errorf("--logger=%s is not supported; only 'zap' is", c.Logger)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error", "dpanic", "panic", "fatal":
	default:
		return fmt.Errorf("--log-level must be one of debug, info, warn, error, panic, fatal, not %q", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("--log-format must be json or console, not %q", c.LogFormat)
	}
	if len(c.LogOutputs) == 0 {
		return errors.New("--log-outputs is empty; use 'default', 'stderr', 'stdout' or a file path")
	}
	for _, o := range c.LogOutputs {
		switch {
		case o == "systemd/journal":
			return errors.New("--log-outputs=systemd/journal is not supported; log to stderr and let systemd collect it")
		case o == "default" && len(c.LogOutputs) > 1:
			return errors.New(`--log-outputs: "default" cannot be combined with other outputs; use "stderr" instead`)
		}
	}
	return nil
}
