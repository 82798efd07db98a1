package server

import (
	"crypto/tls"
	"net/url"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/tlsutil"
)

// Options is everything a member needs to start. Run builds it from the
// command-line configuration; tests build it directly.
type Options struct {
	Name    string
	DataDir string
	WALDir  string // default <data-dir>/member/wal

	ListenClientURLs    []*url.URL
	AdvertiseClientURLs []string
	ListenPeerURLs      []*url.URL
	AdvertisePeerURLs   []string
	ListenMetricsURLs   []*url.URL

	// InitialCluster maps member names to their peer URLs. Used only when the
	// data dir is empty.
	InitialCluster      map[string][]string
	InitialClusterState string // "new" or "existing"
	InitialClusterToken string
	StrictReconfigCheck bool
	ForceNewCluster     bool
	MaxLearners         int // 0 means etcd's default, 1
	// Join, when set (--join-endpoints), replaces InitialCluster for a
	// member that starts with no data and InitialClusterState "existing":
	// it asks the running cluster, and may wait until this member has been
	// added. clientTLS is what the member presents and trusts as a client
	// (nil without client TLS settings).
	Join func(clientTLS *tls.Config) (map[string][]string, error)

	SnapshotCount          uint64
	SnapshotCatchUpEntries uint64
	TickInterval           time.Duration // --heartbeat-interval
	ElectionTimeout        time.Duration // --election-timeout

	QuotaBackendBytes       int64 // 0 means the default, 2 GiB
	AutoCompactionMode      string
	AutoCompactionPeriod    time.Duration // periodic mode; 0 disables
	AutoCompactionRevisions int64         // revision mode; 0 disables
	// autoCompactInterval overrides how often revision mode checks (tests).
	autoCompactInterval time.Duration

	WatchProgressInterval time.Duration

	// DowngradeCheckTime is --downgrade-check-time: how often the leader
	// looks whether an enabled downgrade is complete (0: never).
	DowngradeCheckTime time.Duration

	// Corruption checks (corrupt.go), all off by default:
	// InitialCorruptCheck compares this member's data with its peers'
	// before it serves (the InitialCorruptCheck feature gate,
	// --experimental-initial-corrupt-check); CorruptCheckTime is
	// --corrupt-check-time, the period of the leader's check of every
	// member's current data (0: off); CompactHashCheck and
	// CompactHashCheckTime are the CompactHashCheck feature gate
	// (--experimental-compact-hash-check-enabled) and
	// --compact-hash-check-time, the leader's check of what each
	// compaction kept.
	InitialCorruptCheck  bool
	CorruptCheckTime     time.Duration
	CompactHashCheck     bool
	CompactHashCheckTime time.Duration

	MaxRequestBytes int
	MaxTxnOps       int

	GRPCKeepAliveMinTime  time.Duration
	GRPCKeepAliveInterval time.Duration
	GRPCKeepAliveTimeout  time.Duration

	BackendBatchInterval time.Duration
	BackendBatchLimit    int
	UnsafeNoFsync        bool
	EnablePprof          bool
	EnableGRPCGateway    bool     // the HTTP/JSON gateway under /v3/ (etcd's default: on)
	CORS                 []string // origins allowed from browsers (etcd's default: "*")

	// ClientTLS serves https:// and unixs:// client (and metrics) URLs;
	// PeerTLS serves https:// peer URLs and is what this member presents
	// and trusts when it dials other members. New fills in the auto-TLS
	// directory (<data-dir>/fixtures/client|peer), hosts and logger.
	ClientTLS tlsutil.Config
	PeerTLS   tlsutil.Config

	// AuthToken is --auth-token ("simple", or "jwt,..." with its options),
	// AuthTokenTTL --auth-token-ttl (simple tokens; 0: 300 s) and
	// BcryptCost --bcrypt-cost (0: 10).
	AuthToken    string
	AuthTokenTTL time.Duration
	BcryptCost   int

	Logger *zap.Logger
}

// Defaults as etcd's.
const (
	DefaultQuotaBytes             = int64(2 << 30)
	MaxQuotaBytes                 = int64(8 << 30)
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	DefaultMaxRequestBytes        = 1572864
	DefaultMaxTxnOps              = 128
)

func (o *Options) memberDir() string { return filepath.Join(o.DataDir, "member") }
func (o *Options) snapDir() string   { return filepath.Join(o.memberDir(), "snap") }
func (o *Options) dbPath() string    { return filepath.Join(o.snapDir(), "db") }

func (o *Options) walDir() string {
	if o.WALDir != "" {
		return o.WALDir
	}
	return filepath.Join(o.memberDir(), "wal")
}

func (o *Options) quota() int64 {
	if o.QuotaBackendBytes <= 0 {
		return DefaultQuotaBytes
	}
	return o.QuotaBackendBytes
}

func (o *Options) maxLearners() int {
	if o.MaxLearners <= 0 {
		return 1
	}
	return o.MaxLearners
}

func (o *Options) electionTicks() int {
	t := int(o.ElectionTimeout / o.TickInterval)
	if t < 2 {
		t = 2
	}
	return t
}

// requestTimeout bounds how long a proposal may wait to be applied, as etcd:
// 5 s plus two election timeouts.
func (o *Options) requestTimeout() time.Duration {
	return 5*time.Second + 2*o.ElectionTimeout
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SnapshotCount == 0 {
		o.SnapshotCount = DefaultSnapshotCount
	}
	if o.SnapshotCatchUpEntries == 0 {
		o.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = time.Second
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxTxnOps == 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.InitialClusterToken == "" {
		o.InitialClusterToken = "etcd-cluster"
	}
	if o.InitialClusterState == "" {
		o.InitialClusterState = "new"
	}
}
