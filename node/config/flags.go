package config

import (
	"flag"
	"io"
	"strconv"
	"time"
)

// Help groups, in the order etcd's --help lists them.
const (
	groupMember     = "Member"
	groupClustering = "Clustering"
	groupSecurity   = "Security"
	groupAuth       = "Auth"
	groupMonitoring = "Profiling and Monitoring"
	groupLogging    = "Logging"
	groupFeatures   = "Features"
	groupUnsafe     = "Unsafe feature"
)

var groups = []string{groupMember, groupClustering, groupSecurity, groupAuth,
	groupMonitoring, groupLogging, groupFeatures, groupUnsafe}

// flagInfo is a flag's help entry; hidden flags (deprecated aliases, flags
// without effect) are accepted but not listed.
type flagInfo struct {
	name, group, usage string
}

// registry binds every flag to a field of one Config. The same registry
// serves the command line, the environment and the config file, so a value
// is parsed by the same code whatever its source.
type registry struct {
	c    *Config
	fs   *flag.FlagSet
	help []flagInfo

	// aliases maps etcd 3.5 --experimental-X names to the flag etcd 3.6
	// renamed them to; both names share one flag.Value.
	aliases map[string]string
	// oldGates receives the deprecated boolean gate flags (gateFlags).
	oldGates map[string]bool
	// gatesSet names the gates --feature-gates itself mentioned.
	gatesSet map[string]bool
	// inert flags are accepted for compatibility and have no effect.
	inert map[string]string
	// deprecated flags still work but draw a warning.
	deprecated map[string]string
}

func newRegistry(c *Config) *registry {
	r := &registry{
		c:          c,
		fs:         flag.NewFlagSet("ballast node", flag.ContinueOnError),
		aliases:    map[string]string{},
		oldGates:   map[string]bool{},
		gatesSet:   map[string]bool{},
		inert:      map[string]string{},
		deprecated: map[string]string{},
	}
	// Errors are returned, not printed: main decides what the user sees.
	r.fs.SetOutput(io.Discard)
	r.fs.Usage = func() {}
	r.register()
	return r
}

func (r *registry) add(v flag.Value, name, group, usage string) {
	r.fs.Var(v, name, usage)
	r.help = append(r.help, flagInfo{name: name, group: group, usage: usage})
}

func (r *registry) str(p *string, name, group, usage string) {
	r.add((*stringFlag)(p), name, group, usage)
}

func (r *registry) boolean(p *bool, name, group, usage string) {
	r.add((*boolFlag)(p), name, group, usage)
}

func (r *registry) uintv(p *uint, name, group, usage string) {
	r.add((*uintFlag)(p), name, group, usage)
}

func (r *registry) duration(p *time.Duration, name, group, usage string) {
	r.add(durationValue{p}, name, group, usage)
}

// alias registers a deprecated name for an existing flag.
func (r *registry) alias(old, current string) {
	r.fs.Var(r.fs.Lookup(current).Value, old, "")
	r.aliases[old] = current
}

func (r *registry) inertFlag(name string, isBool bool, why string) {
	r.fs.Var(&inertValue{bool: isBool}, name, "")
	r.inert[name] = why
}

func (r *registry) refuse(name string, isBool bool, ok func(string) bool, why string) {
	r.fs.Var(&refuseValue{isBool: isBool, ok: ok, why: why}, name, "")
}

// register declares every flag etcd 3.6/3.7 knows, with etcd's names.
func (r *registry) register() {
	c := r.c

	// Member
	r.str(&c.Name, "name", groupMember, "Human-readable name for this member.")
	r.str(&c.DataDir, "data-dir", groupMember, "Path to the data directory. Default '${name}.etcd'.")
	r.str(&c.WALDir, "wal-dir", groupMember, "Path to the dedicated wal directory.")
	r.add((*uint64Flag)(&c.SnapshotCount), "snapshot-count", groupMember, "Number of committed transactions to trigger a snapshot.")
	r.add(millisValue{&c.HeartbeatInterval}, "heartbeat-interval", groupMember, "Time (in milliseconds) of a heartbeat interval.")
	r.add(millisValue{&c.ElectionTimeout}, "election-timeout", groupMember, "Time (in milliseconds) for an election to timeout; at least 5 heartbeats.")
	r.boolean(&c.InitialElectionTickAdvance, "initial-election-tick-advance", groupMember, "Whether to fast-forward initial election ticks on boot for faster election.")
	r.add(urlsValue{&c.ListenPeerURLs}, "listen-peer-urls", groupMember, "List of URLs to listen on for peer traffic.")
	r.add(urlsValue{&c.ListenClientURLs}, "listen-client-urls", groupMember, "List of URLs to listen on for client grpc traffic, and http unless --listen-client-http-urls is given.")
	r.add(urlsValue{&c.ListenClientHTTPURLs}, "listen-client-http-urls", groupMember, "List of URLs to listen on for http only client traffic.")
	r.uintv(&c.MaxSnapshots, "max-snapshots", groupMember, "Maximum number of snapshot files to retain (0 is unlimited). Deprecated.")
	r.uintv(&c.MaxWALs, "max-wals", groupMember, "Maximum number of wal files to retain (0 is unlimited).")
	r.boolean(&c.MemoryMlock, "memory-mlock", groupMember, "Enable to keep the backend's pages in RAM.")
	r.add((*int64Flag)(&c.QuotaBackendBytes), "quota-backend-bytes", groupMember, "Maximum size (in bytes) of the backend database; exceeding it raises an alarm and makes the member read-only. 0 means the default 2GiB.")
	r.add(choiceValue{&c.BackendFreelistType, []string{"map", "array"}}, "backend-bbolt-freelist-type", groupMember, "Freelist type of the bbolt backend (map or array).")
	r.duration(&c.BackendBatchInterval, "backend-batch-interval", groupMember, "Maximum time before committing the backend transaction.")
	r.add((*intFlag)(&c.BackendBatchLimit), "backend-batch-limit", groupMember, "Maximum operations before committing the backend transaction.")
	r.uintv(&c.MaxTxnOps, "max-txn-ops", groupMember, "Maximum number of operations permitted in a transaction.")
	r.uintv(&c.MaxRequestBytes, "max-request-bytes", groupMember, "Maximum client request size in bytes the server will accept.")
	r.add(uint32Value{&c.MaxConcurrentStreams}, "max-concurrent-streams", groupMember, "Maximum concurrent streams that each client can open at a time.")
	r.duration(&c.GRPCKeepAliveMinTime, "grpc-keepalive-min-time", groupMember, "Minimum duration a client should wait before pinging the server.")
	r.duration(&c.GRPCKeepAliveInterval, "grpc-keepalive-interval", groupMember, "Frequency of server-to-client pings checking a connection is alive (0 to disable).")
	r.duration(&c.GRPCKeepAliveTimeout, "grpc-keepalive-timeout", groupMember, "Additional wait before closing a non-responsive connection (0 to disable).")
	r.boolean(&c.SocketReusePort, "socket-reuse-port", groupMember, "Set SO_REUSEPORT on listeners.")
	r.boolean(&c.SocketReuseAddress, "socket-reuse-address", groupMember, "Set SO_REUSEADDR on listeners.")
	r.boolean(&c.EnableGRPCGateway, "enable-grpc-gateway", groupMember, "Enable the gRPC gateway (JSON over HTTP).")
	r.duration(&c.RaftReadTimeout, "raft-read-timeout", groupMember, "Read timeout set on each peer connection.")
	r.duration(&c.RaftWriteTimeout, "raft-write-timeout", groupMember, "Write timeout set on each peer connection.")
	r.add(featureGatesValue{&c.FeatureGates, r.gatesSet}, "feature-gates", groupMember, "Comma-separated Name=true|false pairs for etcd's server feature gates.")

	// Clustering
	r.add(urlsValue{&c.InitialAdvertisePeerURLs}, "initial-advertise-peer-urls", groupClustering, "List of this member's peer URLs to advertise to the rest of the cluster.")
	r.str(&c.InitialCluster, "initial-cluster", groupClustering, "Initial cluster configuration for bootstrapping: name=peerURL,... Default '${name}=${initial-advertise-peer-urls}'.")
	r.add(choiceValue{&c.InitialClusterState, []string{ClusterStateNew, ClusterStateExisting}}, "initial-cluster-state", groupClustering, "'new' when bootstrapping a new cluster or 'existing' when adding a member to one. Ignored on restarts.")
	r.str(&c.InitialClusterToken, "initial-cluster-token", groupClustering, "Initial cluster token, protecting against accidental cross-cluster traffic.")
	r.add(urlsValue{&c.JoinEndpoints}, "join-endpoints", groupClustering, "Ballast only: client URLs of a running cluster. With --initial-cluster-state=existing and an empty data dir, the member asks them for the membership (instead of --initial-cluster) and waits until it has been added. Ignored on restarts.")
	r.add(urlsValue{&c.AdvertiseClientURLs}, "advertise-client-urls", groupClustering, "List of this member's client URLs to advertise to the public.")
	r.boolean(&c.StrictReconfigCheck, "strict-reconfig-check", groupClustering, "Reject reconfiguration requests that would cause quorum loss.")
	r.boolean(&c.PreVote, "pre-vote", groupClustering, "Enable the raft Pre-Vote algorithm.")
	r.str(&c.AutoCompactionRetention, "auto-compaction-retention", groupClustering, "Auto compaction retention length. 0 means disable auto compaction.")
	r.add(choiceValue{&c.AutoCompactionMode, []string{CompactionModePeriodic, CompactionModeRevision}}, "auto-compaction-mode", groupClustering, "Interpret 'auto-compaction-retention' as periodic (a duration; a bare number means hours) or revision (a count).")

	// Security
	r.str(&c.ClientTLS.CertFile, "cert-file", groupSecurity, "Path to the client server TLS cert file.")
	r.str(&c.ClientTLS.KeyFile, "key-file", groupSecurity, "Path to the client server TLS key file.")
	r.boolean(&c.ClientTLS.ClientCertAuth, "client-cert-auth", groupSecurity, "Enable client cert authentication.")
	r.str(&c.ClientTLS.ClientCertFile, "client-cert-file", groupSecurity, "Path to an explicit client TLS cert file, otherwise cert-file is used when client auth is required.")
	r.str(&c.ClientTLS.ClientKeyFile, "client-key-file", groupSecurity, "Path to an explicit client TLS key file, otherwise key-file is used when client auth is required.")
	r.str(&c.ClientTLS.CRLFile, "client-crl-file", groupSecurity, "Path to the client certificate revocation list file.")
	r.add(stringsValue{&c.ClientTLS.AllowedHostnames}, "client-cert-allowed-hostname", groupSecurity, "Comma-separated list of SAN hostnames for client cert authentication.")
	r.str(&c.ClientTLS.TrustedCAFile, "trusted-ca-file", groupSecurity, "Path to the client server TLS trusted CA cert file.")
	r.boolean(&c.ClientTLS.AutoTLS, "auto-tls", groupSecurity, "Client TLS using generated certificates.")
	r.str(&c.PeerTLS.CertFile, "peer-cert-file", groupSecurity, "Path to the peer server TLS cert file.")
	r.str(&c.PeerTLS.KeyFile, "peer-key-file", groupSecurity, "Path to the peer server TLS key file.")
	r.boolean(&c.PeerTLS.ClientCertAuth, "peer-client-cert-auth", groupSecurity, "Enable peer client cert authentication.")
	r.str(&c.PeerTLS.ClientCertFile, "peer-client-cert-file", groupSecurity, "Path to an explicit peer client TLS cert file, otherwise peer-cert-file is used.")
	r.str(&c.PeerTLS.ClientKeyFile, "peer-client-key-file", groupSecurity, "Path to an explicit peer client TLS key file, otherwise peer-key-file is used.")
	r.str(&c.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", groupSecurity, "Path to the peer server TLS trusted CA file.")
	r.add(stringsValue{&c.PeerTLS.AllowedCNs}, "peer-cert-allowed-cn", groupSecurity, "Comma-separated list of allowed CNs for inter-peer TLS authentication.")
	r.add(stringsValue{&c.PeerTLS.AllowedHostnames}, "peer-cert-allowed-hostname", groupSecurity, "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.")
	r.boolean(&c.PeerTLS.AutoTLS, "peer-auto-tls", groupSecurity, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.")
	r.uintv(&c.SelfSignedCertValidity, "self-signed-cert-validity", groupSecurity, "Validity (in years) of the certificates generated for --auto-tls and --peer-auto-tls.")
	r.str(&c.PeerTLS.CRLFile, "peer-crl-file", groupSecurity, "Path to the peer certificate revocation list file.")
	r.boolean(&c.PeerTLS.SkipClientSANVerify, "peer-skip-client-san-verification", groupSecurity, "Skip verification of SAN field in client certificate for peer connections.")
	r.add(stringsValue{&c.CipherSuites}, "cipher-suites", groupSecurity, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty means Go's defaults).")
	r.add(stringsValue{&c.CORS}, "cors", groupSecurity, "Comma-separated whitelist of origins for CORS (empty or * means allow all).")
	r.add(stringsValue{&c.HostWhitelist}, "host-whitelist", groupSecurity, "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).")
	r.add(choiceValue{&c.TLSMinVersion, []string{"TLS1.2", "TLS1.3"}}, "tls-min-version", groupSecurity, "Minimum TLS version supported. Possible values: TLS1.2, TLS1.3.")
	r.add(choiceValue{&c.TLSMaxVersion, []string{"", "TLS1.2", "TLS1.3"}}, "tls-max-version", groupSecurity, "Maximum TLS version supported. Possible values: TLS1.2, TLS1.3 (empty means Go's choice).")

	// Auth
	r.str(&c.AuthToken, "auth-token", groupAuth, "Authentication token type and its options ('simple' or 'jwt,...').")
	r.uintv(&c.BcryptCost, "bcrypt-cost", groupAuth, "Cost of the bcrypt algorithm hashing auth passwords, between 4 and 31.")
	r.uintv(&c.AuthTokenTTL, "auth-token-ttl", groupAuth, "Time (in seconds) of the auth-token-ttl.")

	// Profiling and Monitoring
	r.boolean(&c.EnablePprof, "enable-pprof", groupMonitoring, "Enable runtime profiling data via HTTP server at client URL + \"/debug/pprof/\".")
	r.add(choiceValue{&c.Metrics, []string{"basic", "extensive"}}, "metrics", groupMonitoring, "Level of detail for exported metrics: basic or extensive.")
	r.add(urlsValue{&c.ListenMetricsURLs}, "listen-metrics-urls", groupMonitoring, "List of URLs to listen on for the /metrics and /health endpoints.")

	// Logging
	r.str(&c.Logger, "logger", groupLogging, "Only 'zap' (structured logging) is supported.")
	r.add(stringsValue{&c.LogOutputs}, "log-outputs", groupLogging, "Comma-separated log targets: 'default' (stderr), 'stderr', 'stdout' or file paths.")
	r.add(choiceValue{&c.LogLevel, []string{"debug", "info", "warn", "error", "dpanic", "panic", "fatal"}}, "log-level", groupLogging, "Configures log level: debug, info, warn, error, panic or fatal.")
	r.add(choiceValue{&c.LogFormat, []string{"json", "console"}}, "log-format", groupLogging, "Configures log format: json or console.")
	r.duration(&c.WarningUnaryRequestDuration, "warning-unary-request-duration", groupLogging, "Log a warning when a unary request takes longer than this.")

	// Features
	r.duration(&c.CorruptCheckTime, "corrupt-check-time", groupFeatures, "Duration of time between cluster corruption check passes.")
	r.duration(&c.CompactHashCheckTime, "compact-hash-check-time", groupFeatures, "Duration of time between leader checks of followers' compaction hashes.")
	r.add((*intFlag)(&c.CompactionBatchLimit), "compaction-batch-limit", groupFeatures, "Maximum revisions deleted in each compaction batch.")
	r.duration(&c.CompactionSleepInterval, "compaction-sleep-interval", groupFeatures, "Sleep interval between compaction batches.")
	r.duration(&c.WatchProgressNotifyInterval, "watch-progress-notify-interval", groupFeatures, "Duration of periodic watch progress notifications.")
	r.duration(&c.WarningApplyDuration, "warning-apply-duration", groupFeatures, "Log a warning when applying a request takes longer than this.")
	r.uintv(&c.BootstrapDefragThresholdMegabytes, "bootstrap-defrag-threshold-megabytes", groupFeatures, "Defragment the backend on start when that frees at least this many megabytes (0 disables).")
	r.add((*intFlag)(&c.MaxLearners), "max-learners", groupFeatures, "Maximum number of learner members in the cluster.")
	r.duration(&c.DowngradeCheckTime, "downgrade-check-time", groupFeatures, "Duration of time between two downgrade status checks.")
	r.add((*uint64Flag)(&c.SnapshotCatchUpEntries), "snapshot-catchup-entries", groupFeatures, "Number of entries kept for a slow follower to catch up after compacting the raft log.")

	// Unsafe
	r.boolean(&c.ForceNewCluster, "force-new-cluster", groupUnsafe, "Force to create a new one-member cluster.")
	r.boolean(&c.UnsafeNoFsync, "unsafe-no-fsync", groupUnsafe, "Disables fsync, unsafe, will cause data loss.")

	// Not listed in help.
	r.str(&c.ConfigFile, "config-file", "", "")
	r.fs.BoolVar(&c.PrintVersion, "version", false, "")

	// etcd 3.5 names that etcd 3.6 renamed; etcd 3.7 dropped them, but
	// kubeadm and older charts still pass them.
	for old, current := range map[string]string{
		"experimental-compact-hash-check-time":              "compact-hash-check-time",
		"experimental-corrupt-check-time":                   "corrupt-check-time",
		"experimental-compaction-batch-limit":               "compaction-batch-limit",
		"experimental-watch-progress-notify-interval":       "watch-progress-notify-interval",
		"experimental-warning-apply-duration":               "warning-apply-duration",
		"experimental-bootstrap-defrag-threshold-megabytes": "bootstrap-defrag-threshold-megabytes",
		"experimental-memory-mlock":                         "memory-mlock",
		"experimental-snapshot-catchup-entries":             "snapshot-catchup-entries",
		"experimental-compaction-sleep-interval":            "compaction-sleep-interval",
		"experimental-downgrade-check-time":                 "downgrade-check-time",
		"experimental-peer-skip-client-san-verification":    "peer-skip-client-san-verification",
		"experimental-max-learners":                         "max-learners",
		"experimental-backend-bbolt-freelist-type":          "backend-bbolt-freelist-type",
	} {
		r.alias(old, current)
	}
	for name, gate := range gateFlags {
		r.fs.Var(gateFlagValue{gates: r.oldGates, gate: gate}, name, "")
	}
	r.deprecated["max-snapshots"] = "--max-snapshots is deprecated since etcd 3.6 and will be removed; drop it"
	r.inertFlag("v2-deprecation", false, "Ballast has no v2 store")

	// Accepted without effect: tuning for subsystems Ballast does not have.
	const tracing = "Ballast does not export traces"
	for _, name := range []string{"distributed-tracing-address", "distributed-tracing-service-name",
		"distributed-tracing-instance-id", "distributed-tracing-sampling-rate",
		"experimental-distributed-tracing-address", "experimental-distributed-tracing-service-name",
		"experimental-distributed-tracing-instance-id", "experimental-distributed-tracing-sampling-rate"} {
		r.inertFlag(name, false, tracing)
	}
	r.inertFlag("log-rotation-config-json", false, "log rotation is not built in")
	const discovery = "discovery is not supported"
	for _, name := range []string{"discovery-dial-timeout", "discovery-request-timeout",
		"discovery-keepalive-time", "discovery-keepalive-timeout", "discovery-cert", "discovery-key",
		"discovery-cacert", "discovery-user", "discovery-password", "discovery-fallback"} {
		r.inertFlag(name, false, discovery)
	}
	for _, name := range []string{"discovery-insecure-transport", "discovery-insecure-skip-tls-verify"} {
		r.inertFlag(name, true, discovery)
	}
	// Flags etcd itself has ignored since v2.
	for _, name := range []string{"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval",
		"config", "force", "max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval",
		"peer-election-timeout", "retry-interval", "snapshot", "v", "vv"} {
		r.inertFlag(name, false, "etcd ignores it too")
	}

	// Accepted only when they ask for nothing Ballast lacks.
	r.refuse("enable-v2", true, isFalse, "the v2 API was removed in etcd 3.6 and Ballast serves only v3; drop --enable-v2")
	r.refuse("experimental-enable-v2v3", false, isEmpty, "the v2 API was removed in etcd 3.6 and Ballast serves only v3; drop --experimental-enable-v2v3")
	for _, name := range []string{"enable-distributed-tracing", "experimental-enable-distributed-tracing"} {
		r.refuse(name, true, isFalse, tracing+"; drop --"+name)
	}
	r.refuse("enable-log-rotation", true, isFalse, "log rotation is not built in; log to stderr and rotate outside the process (journald, kubelet, logrotate)")
	for _, name := range []string{"discovery", "discovery-srv", "discovery-srv-name", "discovery-endpoints",
		"discovery-token", "discovery-proxy"} {
		r.refuse(name, false, isEmpty, discovery+"; list the members with --initial-cluster instead")
	}
}

// Standard scalar flags, typed so the YAML loader and help can use them.
type (
	stringFlag string
	boolFlag   bool
	uintFlag   uint
	uint64Flag uint64
	int64Flag  int64
	intFlag    int
)

func (f *stringFlag) String() string     { return string(*f) }
func (f *stringFlag) Set(s string) error { *f = stringFlag(s); return nil }

func (f *boolFlag) IsBoolFlag() bool { return true }
func (f *boolFlag) String() string   { return strconv.FormatBool(bool(*f)) }
func (f *boolFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errExpectBool
	}
	*f = boolFlag(b)
	return nil
}

func (f *uintFlag) String() string { return strconv.FormatUint(uint64(*f), 10) }
func (f *uintFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, strconv.IntSize)
	if err != nil {
		return errExpectUint
	}
	*f = uintFlag(n)
	return nil
}

func (f *uint64Flag) String() string { return strconv.FormatUint(uint64(*f), 10) }
func (f *uint64Flag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errExpectUint
	}
	*f = uint64Flag(n)
	return nil
}

func (f *int64Flag) String() string { return strconv.FormatInt(int64(*f), 10) }
func (f *int64Flag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errExpectInt
	}
	*f = int64Flag(n)
	return nil
}

func (f *intFlag) String() string { return strconv.FormatInt(int64(*f), 10) }
func (f *intFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errExpectInt
	}
	*f = intFlag(n)
	return nil
}
