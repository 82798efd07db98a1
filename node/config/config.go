// Package config turns a member's command line, environment and optional
// YAML file into a validated Config, with etcd's flag names, defaults and
// precedence so that scripts, manifests and operators written for etcd start
// a Ballast node unchanged.
//
// Sources, in etcd's order:
//
//   - defaults (Default);
//   - ETCD_<FLAG_NAME> environment variables (ETCD_INITIAL_CLUSTER_STATE for
//     --initial-cluster-state);
//   - command-line flags, which win over the environment;
//   - --config-file (or ETCD_CONFIG_FILE): when given, the YAML file is the
//     only source and every other flag and variable is ignored.
//
// Parse never touches the file system except to read the config file.
package config

import (
	"net/url"
	"time"
)

// Defaults that other packages need to interpret a Config.
const (
	DefaultName = "default"

	// DefaultQuotaBackendBytes is the backend quota used when
	// QuotaBackendBytes is 0.
	DefaultQuotaBackendBytes int64 = 2 << 30
	// MaxQuotaBackendBytes is the largest quota etcd recommends; larger
	// values are accepted with a warning.
	MaxQuotaBackendBytes int64 = 8 << 30

	// DefaultMaxRequestBytes is 1.5 MiB, etcd's limit on one request.
	DefaultMaxRequestBytes = 1572864

	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"

	CompactionModePeriodic = "periodic"
	CompactionModeRevision = "revision"

	// maxElectionTimeout mirrors etcd's upper bound on --election-timeout.
	maxElectionTimeout = 50 * time.Second
)

// Config is a member's configuration. Field comments name the flag that sets
// each field; the YAML key is the flag name unless noted.
type Config struct {
	// ConfigFile is the YAML file the configuration came from, if any.
	ConfigFile string

	Name    string // --name
	DataDir string // --data-dir; "<name>.etcd" when empty
	WALDir  string // --wal-dir; empty means <data-dir>/member/wal

	ListenClientURLs         []url.URL // --listen-client-urls
	ListenClientHTTPURLs     []url.URL // --listen-client-http-urls
	AdvertiseClientURLs      []url.URL // --advertise-client-urls
	ListenPeerURLs           []url.URL // --listen-peer-urls
	InitialAdvertisePeerURLs []url.URL // --initial-advertise-peer-urls
	ListenMetricsURLs        []url.URL // --listen-metrics-urls

	// InitialCluster is "name=peerURL,name=peerURL,..." as given; see
	// InitialClusterMembers for the parsed form.
	InitialCluster             string // --initial-cluster
	InitialClusterState        string // --initial-cluster-state: new|existing
	InitialClusterToken        string // --initial-cluster-token
	ForceNewCluster            bool   // --force-new-cluster
	StrictReconfigCheck        bool   // --strict-reconfig-check
	PreVote                    bool   // --pre-vote
	InitialElectionTickAdvance bool   // --initial-election-tick-advance
	MaxLearners                int    // --max-learners
	// JoinEndpoints (--join-endpoints, Ballast's own) are client URLs of a
	// running cluster. A member that starts with no data and
	// --initial-cluster-state=existing asks them for its membership instead
	// of reading --initial-cluster (see package node/join).
	JoinEndpoints []url.URL

	SnapshotCount          uint64        // --snapshot-count
	SnapshotCatchUpEntries uint64        // --snapshot-catchup-entries
	MaxSnapshots           uint          // --max-snapshots
	MaxWALs                uint          // --max-wals
	HeartbeatInterval      time.Duration // --heartbeat-interval, given in ms
	ElectionTimeout        time.Duration // --election-timeout, given in ms

	// QuotaBackendBytes: 0 means DefaultQuotaBackendBytes, negative means
	// no quota (etcd's behaviour).
	QuotaBackendBytes    int64         // --quota-backend-bytes
	BackendBatchInterval time.Duration // --backend-batch-interval; 0 = server default
	BackendBatchLimit    int           // --backend-batch-limit; 0 = server default
	BackendFreelistType  string        // --backend-bbolt-freelist-type: map|array
	MaxTxnOps            uint          // --max-txn-ops
	MaxRequestBytes      uint          // --max-request-bytes
	MaxConcurrentStreams uint32        // --max-concurrent-streams

	GRPCKeepAliveMinTime  time.Duration // --grpc-keepalive-min-time
	GRPCKeepAliveInterval time.Duration // --grpc-keepalive-interval
	GRPCKeepAliveTimeout  time.Duration // --grpc-keepalive-timeout
	RaftReadTimeout       time.Duration // --raft-read-timeout
	RaftWriteTimeout      time.Duration // --raft-write-timeout
	SocketReusePort       bool          // --socket-reuse-port
	SocketReuseAddress    bool          // --socket-reuse-address
	EnableGRPCGateway     bool          // --enable-grpc-gateway
	CORS                  []string      // --cors
	HostWhitelist         []string      // --host-whitelist

	AutoCompactionMode      string // --auto-compaction-mode: periodic|revision
	AutoCompactionRetention string // --auto-compaction-retention, as given
	// AutoCompactionPeriod is the parsed retention in periodic mode (a bare
	// number means hours); 0 disables auto compaction.
	AutoCompactionPeriod time.Duration
	// AutoCompactionRevisions is the parsed retention in revision mode; 0
	// disables auto compaction.
	AutoCompactionRevisions int64

	ClientTLS              TLSInfo  // --cert-file, --key-file, ...
	PeerTLS                TLSInfo  // --peer-cert-file, --peer-key-file, ...
	CipherSuites           []string // --cipher-suites
	TLSMinVersion          string   // --tls-min-version: TLS1.2|TLS1.3
	TLSMaxVersion          string   // --tls-max-version: ""|TLS1.2|TLS1.3
	SelfSignedCertValidity uint     // --self-signed-cert-validity, years

	AuthToken    string // --auth-token: simple|jwt,...
	BcryptCost   uint   // --bcrypt-cost
	AuthTokenTTL uint   // --auth-token-ttl, seconds

	Logger     string   // --logger: zap
	LogLevel   string   // --log-level
	LogFormat  string   // --log-format: json|console
	LogOutputs []string // --log-outputs: default|stderr|stdout|<file>

	EnablePprof bool   // --enable-pprof
	Metrics     string // --metrics: basic|extensive

	CorruptCheckTime                  time.Duration // --corrupt-check-time
	CompactHashCheckTime              time.Duration // --compact-hash-check-time
	CompactionBatchLimit              int           // --compaction-batch-limit
	CompactionSleepInterval           time.Duration // --compaction-sleep-interval
	WatchProgressNotifyInterval       time.Duration // --watch-progress-notify-interval
	WarningApplyDuration              time.Duration // --warning-apply-duration
	WarningUnaryRequestDuration       time.Duration // --warning-unary-request-duration
	DowngradeCheckTime                time.Duration // --downgrade-check-time
	BootstrapDefragThresholdMegabytes uint          // --bootstrap-defrag-threshold-megabytes
	MemoryMlock                       bool          // --memory-mlock
	UnsafeNoFsync                     bool          // --unsafe-no-fsync

	// FeatureGates holds the gates set with --feature-gates or the
	// deprecated boolean --experimental-* flags; see FeatureEnabled.
	FeatureGates map[string]bool

	// PrintVersion is set by --version; Parse then skips validation and the
	// caller prints the version and exits.
	PrintVersion bool

	// ExplicitlySet names the flags (or YAML keys, as flag names) the
	// operator set, after experimental aliases are resolved.
	ExplicitlySet map[string]bool

	// Warnings are sentences to log once a logger exists: unrecognised
	// environment variables, deprecated or ignored flags, risky values.
	Warnings []string
}

// TLSInfo is one side's (client or peer) TLS settings.
type TLSInfo struct {
	CertFile            string   // --[peer-]cert-file
	KeyFile             string   // --[peer-]key-file
	ClientCertFile      string   // --[peer-]client-cert-file
	ClientKeyFile       string   // --[peer-]client-key-file
	ClientCertAuth      bool     // --[peer-]client-cert-auth
	TrustedCAFile       string   // --[peer-]trusted-ca-file
	CRLFile             string   // --client-crl-file / --peer-crl-file
	AutoTLS             bool     // --auto-tls / --peer-auto-tls
	AllowedCNs          []string // --peer-cert-allowed-cn (YAML only for clients)
	AllowedHostnames    []string // --client-cert-allowed-hostname / --peer-cert-allowed-hostname
	SkipClientSANVerify bool     // --peer-skip-client-san-verification
}

// Empty reports whether no certificate is configured (auto TLS aside).
func (t *TLSInfo) Empty() bool { return t.CertFile == "" && t.KeyFile == "" }

// Default returns etcd's defaults. DataDir is empty and InitialCluster names
// the default member: Parse derives both from --name, so tests that need a
// runnable Config should call Parse with the flags they care about.
func Default() *Config {
	return &Config{
		Name:                        DefaultName,
		ListenClientURLs:            mustURLs("http://localhost:2379"),
		AdvertiseClientURLs:         mustURLs("http://localhost:2379"),
		ListenPeerURLs:              mustURLs("http://localhost:2380"),
		InitialAdvertisePeerURLs:    mustURLs("http://localhost:2380"),
		InitialCluster:              defaultInitialCluster,
		InitialClusterState:         ClusterStateNew,
		InitialClusterToken:         "etcd-cluster",
		StrictReconfigCheck:         true,
		PreVote:                     true,
		InitialElectionTickAdvance:  true,
		MaxLearners:                 1,
		SnapshotCount:               10000,
		SnapshotCatchUpEntries:      5000,
		MaxSnapshots:                5,
		MaxWALs:                     5,
		HeartbeatInterval:           100 * time.Millisecond,
		ElectionTimeout:             1000 * time.Millisecond,
		BackendFreelistType:         "map",
		MaxTxnOps:                   128,
		MaxRequestBytes:             DefaultMaxRequestBytes,
		MaxConcurrentStreams:        1<<32 - 1,
		GRPCKeepAliveMinTime:        5 * time.Second,
		GRPCKeepAliveInterval:       2 * time.Hour,
		GRPCKeepAliveTimeout:        20 * time.Second,
		RaftReadTimeout:             5 * time.Second,
		RaftWriteTimeout:            5 * time.Second,
		EnableGRPCGateway:           true,
		CORS:                        []string{"*"},
		HostWhitelist:               []string{"*"},
		AutoCompactionMode:          CompactionModePeriodic,
		AutoCompactionRetention:     "0",
		TLSMinVersion:               "TLS1.2",
		SelfSignedCertValidity:      1,
		AuthToken:                   "simple",
		BcryptCost:                  10,
		AuthTokenTTL:                300,
		Logger:                      "zap",
		LogLevel:                    "info",
		LogFormat:                   "json",
		LogOutputs:                  []string{"default"},
		Metrics:                     "basic",
		CompactHashCheckTime:        time.Minute,
		CompactionBatchLimit:        1000,
		CompactionSleepInterval:     10 * time.Millisecond,
		WatchProgressNotifyInterval: 10 * time.Minute,
		WarningApplyDuration:        100 * time.Millisecond,
		WarningUnaryRequestDuration: 300 * time.Millisecond,
		DowngradeCheckTime:          5 * time.Second,
		FeatureGates:                map[string]bool{},
		ExplicitlySet:               map[string]bool{},
	}
}

// defaultInitialCluster is what etcd's initial-cluster defaults to; a member
// renamed with --name alone gets "<name>=<advertised peer URLs>" instead.
const defaultInitialCluster = "default=http://localhost:2380"

// QuotaBytes is the effective backend quota: 0 means no limit.
func (c *Config) QuotaBytes() int64 {
	switch {
	case c.QuotaBackendBytes < 0:
		return 0
	case c.QuotaBackendBytes == 0:
		return DefaultQuotaBackendBytes
	}
	return c.QuotaBackendBytes
}
