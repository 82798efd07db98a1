package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, args, env []string) *Config {
	t.Helper()
	c, err := Parse(args, env)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", args, env, err)
	}
	return c
}

func hasWarning(c *Config, substr string) bool {
	for _, w := range c.Warnings {
		if strings.Contains(w, substr) {
			return true
		}
	}
	return false
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, nil, nil)
	want := map[string]any{
		"Name":                        "default",
		"DataDir":                     "default.etcd",
		"WALDir":                      "",
		"ListenClientURLs":            "http://localhost:2379",
		"AdvertiseClientURLs":         "http://localhost:2379",
		"ListenPeerURLs":              "http://localhost:2380",
		"InitialAdvertisePeerURLs":    "http://localhost:2380",
		"ListenMetricsURLs":           "",
		"InitialCluster":              "default=http://localhost:2380",
		"InitialClusterState":         "new",
		"InitialClusterToken":         "etcd-cluster",
		"SnapshotCount":               uint64(10000),
		"HeartbeatInterval":           100 * time.Millisecond,
		"ElectionTimeout":             time.Second,
		"QuotaBackendBytes":           int64(0),
		"MaxRequestBytes":             uint(1572864),
		"MaxTxnOps":                   uint(128),
		"GRPCKeepAliveMinTime":        5 * time.Second,
		"GRPCKeepAliveInterval":       2 * time.Hour,
		"GRPCKeepAliveTimeout":        20 * time.Second,
		"StrictReconfigCheck":         true,
		"MaxLearners":                 1,
		"AutoCompactionMode":          "periodic",
		"AutoCompactionRetention":     "0",
		"AutoCompactionPeriod":        time.Duration(0),
		"LogLevel":                    "info",
		"Logger":                      "zap",
		"LogOutputs":                  "default",
		"ForceNewCluster":             false,
		"UnsafeNoFsync":               false,
		"EnablePprof":                 false,
		"SnapshotCatchUpEntries":      uint64(5000),
		"WatchProgressNotifyInterval": 10 * time.Minute,
		"TLSMinVersion":               "TLS1.2",
		"AuthToken":                   "simple",
		"BcryptCost":                  uint(10),
	}
	v := reflect.ValueOf(c).Elem()
	for field, w := range want {
		got := v.FieldByName(field).Interface()
		switch g := got.(type) {
		case []string:
			got = strings.Join(g, ",")
		default:
			if us, ok := asURLs(got); ok {
				got = us
			}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", field, got, w)
		}
	}
	if c.QuotaBytes() != 2<<30 {
		t.Errorf("QuotaBytes() = %d, want 2GiB", c.QuotaBytes())
	}
	if !hasWarning(c, `member name is "default"`) {
		t.Errorf("no warning about the default name: %q", c.Warnings)
	}
	if len(c.ExplicitlySet) != 0 {
		t.Errorf("ExplicitlySet = %v, want empty", c.ExplicitlySet)
	}
}

func asURLs(v any) (string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || rv.Type().Elem().Name() != "URL" {
		return "", false
	}
	var parts []string
	for i := 0; i < rv.Len(); i++ {
		parts = append(parts, rv.Index(i).Addr().MethodByName("String").Call(nil)[0].String())
	}
	return strings.Join(parts, ","), true
}

func TestFlagForms(t *testing.T) {
	for _, args := range [][]string{
		{"--name=n1"},
		{"--name", "n1"},
		{"-name=n1"},
		{"-name", "n1"},
		{"--name=n0", "--name=n1"}, // last wins
	} {
		c := mustParse(t, args, nil)
		if c.Name != "n1" {
			t.Errorf("%q: Name = %q, want n1", args, c.Name)
		}
	}
	// Booleans: bare, =true, =false; "--flag false" is not a bool value.
	if c := mustParse(t, []string{"--force-new-cluster"}, nil); !c.ForceNewCluster {
		t.Error("--force-new-cluster did not set ForceNewCluster")
	}
	if c := mustParse(t, []string{"--strict-reconfig-check=false"}, nil); c.StrictReconfigCheck {
		t.Error("--strict-reconfig-check=false left it true")
	}
	if _, err := Parse([]string{"--strict-reconfig-check", "false"}, nil); err == nil {
		t.Error(`"--strict-reconfig-check false" accepted; etcd rejects it as a positional argument`)
	}
}

func TestTypedValues(t *testing.T) {
	c := mustParse(t, []string{
		"--heartbeat-interval=50", "--election-timeout", "500",
		"--snapshot-count=5", "--quota-backend-bytes=8589934592",
		"--max-request-bytes=10", "--max-txn-ops=3",
		"--grpc-keepalive-min-time=1s", "--grpc-keepalive-interval=1m", "--grpc-keepalive-timeout=3s",
		"--auto-compaction-mode=periodic", "--auto-compaction-retention=30m",
		"--log-level=debug", "--log-outputs=stderr,stdout,stderr",
		"--max-learners=2", "--enable-pprof", "--unsafe-no-fsync",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--wal-dir=/w", "--data-dir=/d",
		"--feature-gates=InitialCorruptCheck=true,TxnModeWriteWithSharedBuffer=false",
	}, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"heartbeat", c.HeartbeatInterval, 50 * time.Millisecond},
		{"election", c.ElectionTimeout, 500 * time.Millisecond},
		{"snapshot", c.SnapshotCount, uint64(5)},
		{"quota", c.QuotaBackendBytes, int64(8 << 30)},
		{"maxreq", c.MaxRequestBytes, uint(10)},
		{"maxtxn", c.MaxTxnOps, uint(3)},
		{"kamin", c.GRPCKeepAliveMinTime, time.Second},
		{"kaint", c.GRPCKeepAliveInterval, time.Minute},
		{"kato", c.GRPCKeepAliveTimeout, 3 * time.Second},
		{"period", c.AutoCompactionPeriod, 30 * time.Minute},
		{"level", c.LogLevel, "debug"},
		{"outputs", c.LogOutputs, []string{"stderr", "stdout"}},
		{"learners", c.MaxLearners, 2},
		{"pprof", c.EnablePprof, true},
		{"nofsync", c.UnsafeNoFsync, true},
		{"metrics", c.ListenMetricsURLs[0].String(), "http://127.0.0.1:2381"},
		{"wal", c.WALDir, "/w"},
		{"data", c.DataDir, "/d"},
		{"corrupt gate", c.FeatureEnabled(FeatureInitialCorruptCheck), true},
		{"shared buffer gate", c.FeatureEnabled(FeatureTxnModeWriteWithSharedBuffer), false},
		{"fast keepalive default", c.FeatureEnabled(FeatureFastLeaseKeepAlive), true},
		{"unknown gate", c.FeatureEnabled("Nope"), false},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if !hasWarning(c, "--unsafe-no-fsync") {
		t.Errorf("no warning for --unsafe-no-fsync: %q", c.Warnings)
	}
}

func TestEnvironment(t *testing.T) {
	env := []string{
		"PATH=/bin",
		"ETCD_NAME=e1",
		"ETCD_INITIAL_CLUSTER_STATE=existing",
		"ETCD_HEARTBEAT_INTERVAL=200",
		"ETCD_ELECTION_TIMEOUT=2000",
		"ETCD_FORCE_NEW_CLUSTER=true",
		"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379",
		"ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:12379",
		"ETCD_EMPTY_IS_FINE=",
		"ETCD_NOT_A_FLAG=1",
		"ETCD_VERSION=1",
		"ETCD_DATA_DIR=", // empty: keeps the default
	}
	c := mustParse(t, []string{"--initial-cluster-token=tok"}, env)
	if c.Name != "e1" || c.InitialClusterState != "existing" || !c.ForceNewCluster ||
		c.HeartbeatInterval != 200*time.Millisecond || c.ElectionTimeout != 2*time.Second ||
		c.InitialClusterToken != "tok" || c.DataDir != "e1.etcd" {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.InitialCluster != "e1=http://localhost:2380" {
		t.Errorf("InitialCluster = %q", c.InitialCluster)
	}
	for _, w := range []string{"ETCD_NOT_A_FLAG", "ETCD_EMPTY_IS_FINE", "ETCD_VERSION"} {
		if !hasWarning(c, w) {
			t.Errorf("no warning for %s: %q", w, c.Warnings)
		}
	}
	if hasWarning(c, "PATH") || hasWarning(c, "ETCD_NAME") || hasWarning(c, "ETCD_DATA_DIR") {
		t.Errorf("unexpected warning: %q", c.Warnings)
	}
	for _, name := range []string{"name", "initial-cluster-state", "initial-cluster-token"} {
		if !c.ExplicitlySet[name] {
			t.Errorf("ExplicitlySet[%s] = false", name)
		}
	}
	if c.ExplicitlySet["data-dir"] {
		t.Error("an empty ETCD_DATA_DIR counted as set")
	}
}

func TestEnvironmentErrors(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		// etcd refuses a variable shadowed by a flag (it exits fatally).
		{[]string{"--name=a"}, []string{"ETCD_NAME=b"}, "ETCD_NAME conflicts with the command-line flag --name"},
		{[]string{"--name=a"}, []string{"ETCD_NAME="}, "conflicts"},
		{nil, []string{"ETCD_SNAPSHOT_COUNT=many"}, `invalid value "many" for ETCD_SNAPSHOT_COUNT`},
		{nil, []string{"ETCD_INITIAL_CLUSTER_STATE=old"}, "ETCD_INITIAL_CLUSTER_STATE"},
		{nil, []string{"ETCD_ENABLE_V2=true"}, "v2 API"},
	} {
		_, err := Parse(tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) = %v, want error containing %q", tc.args, tc.env, err, tc.want)
		}
		var ue *UsageError
		if !errors.As(err, &ue) || ue.ExitCode() != 2 {
			t.Errorf("Parse(%q, %q): error %T is not a *UsageError with exit code 2", tc.args, tc.env, err)
		}
	}
}

func TestDerived(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		dataDir     string
		initCluster string
	}{
		{nil, "default.etcd", "default=http://localhost:2380"},
		{[]string{"--name=infra1"}, "infra1.etcd", "infra1=http://localhost:2380"},
		{[]string{"--name=infra1", "--data-dir=/var/lib/etcd"}, "/var/lib/etcd", "infra1=http://localhost:2380"},
		{[]string{"--name=infra1", "--initial-advertise-peer-urls=http://10.0.0.2:2380,http://10.0.0.1:2380"},
			"infra1.etcd", "infra1=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380"},
		{[]string{"--name=infra1", "--initial-cluster=infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380"},
			"infra1.etcd", "infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380"},
		// The default peer URLs with a default name stay as they are.
		{[]string{"--initial-advertise-peer-urls=http://10.0.0.1:2380"}, "default.etcd", "default=http://localhost:2380"},
	} {
		c := mustParse(t, tc.args, nil)
		if c.DataDir != tc.dataDir || c.InitialCluster != tc.initCluster {
			t.Errorf("%q: data-dir %q initial-cluster %q, want %q %q", tc.args, c.DataDir, c.InitialCluster, tc.dataDir, tc.initCluster)
		}
	}
}

func TestAdvertiseClientRequired(t *testing.T) {
	_, err := Parse([]string{"--listen-client-urls=http://0.0.0.0:2379"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--advertise-client-urls is required") {
		t.Fatalf("err = %v", err)
	}
	// Through the environment too.
	_, err = Parse(nil, []string{"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"})
	if err == nil {
		t.Fatal("ETCD_LISTEN_CLIENT_URLS without advertise accepted")
	}
	mustParse(t, []string{"--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://10.1.1.1:2379"}, nil)
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --bogus"},
		{[]string{"-bogus=1"}, "unknown flag --bogus"},
		{[]string{"node"}, `"node" is not a valid flag`},
		{[]string{"--name"}, "flag needs an argument: --name"},
		{[]string{"--snapshot-count=-1"}, "--snapshot-count"},
		{[]string{"--heartbeat-interval=1s"}, "milliseconds"},
		{[]string{"--heartbeat-interval=0"}, "--heartbeat-interval must be >0"},
		{[]string{"--election-timeout=400"}, "at least 5 times"},
		{[]string{"--election-timeout=60000", "--heartbeat-interval=1000"}, "too long"},
		{[]string{"--initial-cluster-state=old"}, `valid values are "new", "existing"`},
		{[]string{"--auto-compaction-mode=daily"}, "auto-compaction-mode"},
		{[]string{"--auto-compaction-retention=soon"}, "auto-compaction-retention"},
		{[]string{"--auto-compaction-mode=revision", "--auto-compaction-retention=1h"}, "number of revisions"},
		{[]string{"--auto-compaction-retention=-1"}, "auto-compaction-retention"},
		{[]string{"--grpc-keepalive-min-time=5"}, "duration"},
		{[]string{"--force-new-cluster=maybe"}, "force-new-cluster"},
		{[]string{"--log-level=verbose"}, "log-level"},
		{[]string{"--logger=capnslog"}, "capnslog"},
		{[]string{"--log-outputs=default,stdout"}, `"default" cannot be combined`},
		{[]string{"--log-outputs=systemd/journal"}, "journal"},
		{[]string{"--feature-gates=Bogus=true"}, "unrecognized feature gate: Bogus"},
		{[]string{"--feature-gates=InitialCorruptCheck"}, "missing bool value"},
		{[]string{"--feature-gates=LeaseCheckpointPersist=true"}, "requires LeaseCheckpoint"},
		{[]string{"--initial-cluster=a"}, "must be name=peerURL"},
		{[]string{"--initial-cluster=a=ftp://x:1"}, "scheme"},
		{[]string{"--initial-cluster=a=http://x:1,b=http://x:1"}, "listed for both"},
		{[]string{"--enable-v2"}, "v2 API"},
		{[]string{"--enable-v2=true"}, "v2 API"},
		{[]string{"--discovery-srv=example.com"}, "discovery is not supported"},
		{[]string{"--enable-log-rotation"}, "log rotation"},
		{[]string{"--enable-distributed-tracing"}, "traces"},
		{[]string{"--bcrypt-cost=3"}, "bcrypt-cost"},
		{[]string{"--auth-token=oauth"}, "auth-token"},
		{[]string{"--max-request-bytes=0"}, "max-request-bytes"},
		{[]string{"--compact-hash-check-time=0s"}, "compact-hash-check-time"},
		{[]string{"--tls-min-version=TLS1.0"}, "tls-min-version"},
		{[]string{"--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"}, "greater than"},
		{[]string{"--tls-min-version=TLS1.3", "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, "only TLS1.3"},
		{[]string{"--cipher-suites=TLS_FAKE"}, "unknown cipher suite"},
		{[]string{"--experimental-watch-progress-notify-interval=5s", "--watch-progress-notify-interval=1s"}, "same setting"},
		{[]string{"--experimental-initial-corrupt-check", "--feature-gates=InitialCorruptCheck=false"}, "same setting"},
	} {
		_, err := Parse(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.args, err, tc.want)
			continue
		}
		var ue *UsageError
		if !errors.As(err, &ue) || ue.ExitCode() != ExitUsage {
			t.Errorf("Parse(%q): %T is not a *UsageError", tc.args, err)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		if _, err := Parse([]string{arg}, nil); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%s) = %v, want ErrHelp", arg, err)
		}
	}
	// --version skips validation of the rest.
	c, err := Parse([]string{"--version", "--election-timeout=1"}, []string{"ETCD_NAME=x"})
	if err != nil || !c.PrintVersion {
		t.Fatalf("Parse(--version) = %+v, %v", c, err)
	}
	// ETCD_VERSION never asks for the version.
	c = mustParse(t, nil, []string{"ETCD_VERSION=true"})
	if c.PrintVersion {
		t.Error("ETCD_VERSION=true set PrintVersion")
	}
}

func TestUsageListsFlags(t *testing.T) {
	u := Usage()
	for _, want := range []string{"Member:", "Clustering:", "Security:", "Auth:", "Logging:",
		"--name 'default'", "--initial-cluster-token 'etcd-cluster'", "--max-request-bytes '1572864'",
		"--grpc-keepalive-min-time '5s'", "--peer-cert-allowed-cn", "--auto-compaction-mode 'periodic'"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage() lacks %q", want)
		}
	}
	if strings.Contains(u, "--experimental-watch") || strings.Contains(u, "--experimental-initial") {
		t.Error("Usage() lists deprecated --experimental-* names")
	}
	r := newRegistry(Default())
	for _, f := range r.help {
		if !strings.Contains(u, "--"+f.name+" ") {
			t.Errorf("Usage() lacks --%s", f.name)
		}
	}
}

func TestDeprecatedNames(t *testing.T) {
	c := mustParse(t, []string{
		"--experimental-initial-corrupt-check=true",
		"--experimental-compact-hash-check-enabled",
		"--experimental-watch-progress-notify-interval=5s",
		"--experimental-peer-skip-client-san-verification",
		"--experimental-snapshot-catchup-entries=100",
		"--enable-v2=false",
		"--experimental-enable-v2v3=",
		"--v2-deprecation=write-only",
		"--max-snapshots=3",
		"--discovery-dial-timeout=1s",
	}, nil)
	if !c.FeatureEnabled(FeatureInitialCorruptCheck) || !c.FeatureEnabled(FeatureCompactHashCheck) {
		t.Errorf("gates = %v", c.FeatureGates)
	}
	if c.WatchProgressNotifyInterval != 5*time.Second || !c.PeerTLS.SkipClientSANVerify || c.SnapshotCatchUpEntries != 100 {
		t.Errorf("aliases not applied: %+v", c)
	}
	if !c.ExplicitlySet["watch-progress-notify-interval"] || c.ExplicitlySet["experimental-watch-progress-notify-interval"] {
		t.Errorf("ExplicitlySet = %v", c.ExplicitlySet)
	}
	for _, w := range []string{"use --watch-progress-notify-interval", "use --feature-gates=InitialCorruptCheck=true",
		"--max-snapshots", "--v2-deprecation has no effect", "--discovery-dial-timeout has no effect"} {
		if !hasWarning(c, w) {
			t.Errorf("no warning %q in %q", w, c.Warnings)
		}
	}
}

func TestURLs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // joined result, or "error: substr"
	}{
		{"http://127.0.0.1:2379", "http://127.0.0.1:2379"},
		{"https://[::1]:2379", "https://[::1]:2379"},
		{" http://b:1 , http://a:1,http://b:1", "http://a:1,http://b:1"},
		{"unix://localhost:2379", "unix://localhost:2379"},
		{"unix:///var/run/etcd.sock", "unix:///var/run/etcd.sock"},
		{"unixs://sock", "unixs://sock"},
		{"", ""},
		{"http://127.0.0.1", "error: host:port"},
		{"http://127.0.0.1:2379/path", "error: path"},
		{"http://127.0.0.1:99999", "error: invalid port"},
		{"ftp://127.0.0.1:21", "error: scheme"},
		{"127.0.0.1:2379", "error: "},
		{"http://user:pw@127.0.0.1:2379", "error: credentials"},
		{"unix://", "error: socket"},
		{"http://a:1,,http://b:1", "error: "},
	} {
		us, err := parseURLs(tc.in)
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("parseURLs(%q) = %v, %v; want error containing %q", tc.in, us, err, want)
			}
			continue
		}
		if err != nil || joinURLs(us) != tc.want {
			t.Errorf("parseURLs(%q) = %q, %v; want %q", tc.in, joinURLs(us), err, tc.want)
		}
	}

	// Binding needs an IP; advertising needs a host.
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--listen-peer-urls=http://0.0.0.0:2380"}, true},
		{[]string{"--listen-peer-urls=http://:2380"}, true},
		{[]string{"--listen-peer-urls=http://example.com:2380"}, false},
		{[]string{"--listen-peer-urls=unix://peer.sock"}, true},
		{[]string{"--initial-advertise-peer-urls=http://example.com:2380"}, true},
		{[]string{"--initial-advertise-peer-urls=http://:2380"}, false},
		{[]string{"--advertise-client-urls=http://:2379"}, false},
		{[]string{"--listen-metrics-urls=http://node1:2381"}, false},
		{[]string{"--join-endpoints=http://c-client.ns.svc:2379,https://10.0.0.1:2379"}, true},
		{[]string{"--join-endpoints=http://:2379"}, false},
		{[]string{"--join-endpoints=c-client:2379"}, false},
	} {
		_, err := Parse(tc.args, nil)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) = %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

func TestTLSRules(t *testing.T) {
	https := []string{"--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379"}
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{https, "no certificate"},
		{append(https, "--cert-file=c.pem", "--key-file=k.pem"), ""},
		{append(https, "--auto-tls"), ""},
		{append(https, "--cert-file=c.pem"), "must be given together"},
		{[]string{"--listen-peer-urls=https://127.0.0.1:2380"}, "--peer-cert-file"},
		{[]string{"--listen-peer-urls=unixs://p.sock"}, "no certificate"},
		{[]string{"--listen-peer-urls=https://127.0.0.1:2380", "--peer-cert-file=c", "--peer-key-file=k"}, ""},
		{[]string{"--listen-metrics-urls=https://127.0.0.1:2381"}, "no certificate"},
		{[]string{"--peer-client-cert-file=c"}, "must be given together"},
		{[]string{"--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "--tls-max-version=TLS1.3"}, ""},
	} {
		c, err := Parse(tc.args, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Parse(%q) = %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.args, err, tc.want)
		case tc.want == "" && len(c.CipherSuites) > 0:
			if id, ok := CipherSuite(c.CipherSuites[0]); !ok || id == 0 {
				t.Errorf("CipherSuite(%q) = %d, %v", c.CipherSuites[0], id, ok)
			}
		}
	}
	c := mustParse(t, []string{"--peer-cert-allowed-cn=etcd-peer,other", "--client-crl-file=crl", "--peer-client-cert-auth", "--trusted-ca-file=ca"}, nil)
	if !reflect.DeepEqual(c.PeerTLS.AllowedCNs, []string{"etcd-peer", "other"}) || c.ClientTLS.CRLFile != "crl" ||
		!c.PeerTLS.ClientCertAuth || c.ClientTLS.TrustedCAFile != "ca" {
		t.Errorf("TLS flags not stored: client %+v peer %+v", c.ClientTLS, c.PeerTLS)
	}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		mode, in string
		period   time.Duration
		revs     int64
		bad      bool
	}{
		{"periodic", "0", 0, 0, false},
		{"periodic", "1", time.Hour, 0, false},
		{"periodic", "72", 72 * time.Hour, 0, false},
		{"periodic", "30m", 30 * time.Minute, 0, false},
		{"periodic", "1h30m", 90 * time.Minute, 0, false},
		{"periodic", "-1", 0, 0, true},
		{"periodic", "-5m", 0, 0, true},
		{"periodic", "99999999999", 0, 0, true},
		{"periodic", "x", 0, 0, true},
		{"revision", "1000", 0, 1000, false},
		{"revision", "0", 0, 0, false},
		{"revision", "1h", 0, 0, true},
		{"revision", "-1", 0, 0, true},
		{"weekly", "1", 0, 0, true},
	} {
		p, r, err := parseRetention(tc.mode, tc.in)
		if (err != nil) != tc.bad || p != tc.period || r != tc.revs {
			t.Errorf("parseRetention(%s, %s) = %v, %d, %v", tc.mode, tc.in, p, r, err)
		}
	}
}

func TestInitialClusterMembers(t *testing.T) {
	c := Default()
	c.InitialCluster = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://10.0.1.1:2380"
	ms, err := c.InitialClusterMembers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "a" || len(ms[0].PeerURLs) != 2 || ms[1].Name != "b" {
		t.Errorf("members = %+v", ms)
	}
	c.InitialCluster = ""
	if ms, err := c.InitialClusterMembers(); ms != nil || err != nil {
		t.Errorf("empty initial cluster = %v, %v", ms, err)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sampleFile = `
name: infra0
data-dir: /var/lib/etcd
snapshot-count: 5000
heartbeat-interval: 50
election-timeout: 500
quota-backend-bytes: 8589934592
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
advertise-client-urls: http://10.0.0.1:2379
listen-peer-urls: http://10.0.0.1:2380
initial-advertise-peer-urls: http://10.0.0.1:2380
initial-cluster: infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380
initial-cluster-state: existing
initial-cluster-token: tok
auto-compaction-mode: revision
auto-compaction-retention: "1000"
grpc-keepalive-min-time: 10000000000
grpc-keepalive-interval: 1h
log-outputs: [stderr]
log-level: warn
wal-dir:
feature-gates: InitialCorruptCheck=true
experimental-snapshot-catch-up-entries: 42
strict-reconfig-check: false
cipher-suites:
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
client-transport-security:
  cert-file: /c.pem
  key-file: /k.pem
  client-cert-auth: true
  trusted-ca-file: /ca.pem
  allowed-cn: admin
peer-transport-security:
  cert-file: /pc.pem
  key-file: /pk.pem
  allowed-cn: [peer-a, peer-b]
  skip-client-san-verification: true
no-such-key: 1
`

func TestConfigFile(t *testing.T) {
	path := writeFile(t, sampleFile)
	check := func(c *Config) {
		t.Helper()
		if c.Name != "infra0" || c.DataDir != "/var/lib/etcd" || c.SnapshotCount != 5000 ||
			c.HeartbeatInterval != 50*time.Millisecond || c.ElectionTimeout != 500*time.Millisecond ||
			c.QuotaBackendBytes != 8<<30 || c.InitialClusterState != "existing" || c.InitialClusterToken != "tok" ||
			c.AutoCompactionRevisions != 1000 || c.GRPCKeepAliveMinTime != 10*time.Second ||
			c.GRPCKeepAliveInterval != time.Hour || c.LogLevel != "warn" || c.StrictReconfigCheck ||
			c.SnapshotCatchUpEntries != 42 || !c.FeatureEnabled(FeatureInitialCorruptCheck) || c.WALDir != "" {
			t.Errorf("file not applied: %+v", c)
		}
		if got := joinURLs(c.ListenClientURLs); got != "http://10.0.0.1:2379,http://127.0.0.1:2379" {
			t.Errorf("listen-client-urls = %s", got)
		}
		if c.ClientTLS.CertFile != "/c.pem" || !c.ClientTLS.ClientCertAuth || c.ClientTLS.TrustedCAFile != "/ca.pem" ||
			!reflect.DeepEqual(c.ClientTLS.AllowedCNs, []string{"admin"}) {
			t.Errorf("client TLS = %+v", c.ClientTLS)
		}
		if c.PeerTLS.CertFile != "/pc.pem" || c.PeerTLS.KeyFile != "/pk.pem" || !c.PeerTLS.SkipClientSANVerify ||
			!reflect.DeepEqual(c.PeerTLS.AllowedCNs, []string{"peer-a", "peer-b"}) {
			t.Errorf("peer TLS = %+v", c.PeerTLS)
		}
		if !hasWarning(c, `"no-such-key"`) {
			t.Errorf("no warning for the unknown key: %q", c.Warnings)
		}
		if c.ConfigFile != path || !c.ExplicitlySet["peer-cert-file"] || !c.ExplicitlySet["snapshot-catchup-entries"] {
			t.Errorf("ConfigFile %q ExplicitlySet %v", c.ConfigFile, c.ExplicitlySet)
		}
	}

	// The file is the only source: flags and environment are ignored, with
	// a warning, exactly as etcd does.
	c := mustParse(t, []string{"--config-file", path, "--name=flag", "--snapshot-count=1"}, []string{"ETCD_LOG_LEVEL=debug"})
	check(c)
	if !hasWarning(c, "--name, --snapshot-count are ignored") || !hasWarning(c, "1 ETCD_* environment variables are ignored") {
		t.Errorf("warnings = %q", c.Warnings)
	}
	check(mustParse(t, nil, []string{"ETCD_CONFIG_FILE=" + path}))
	// --config-file beats ETCD_CONFIG_FILE.
	check(mustParse(t, []string{"--config-file=" + path}, []string{"ETCD_CONFIG_FILE=/nonexistent"}))
}

func TestConfigFileDerivedAndErrors(t *testing.T) {
	c := mustParse(t, []string{"--config-file", writeFile(t, "name: solo\n")}, nil)
	if c.DataDir != "solo.etcd" || c.InitialCluster != "solo=http://localhost:2380" {
		t.Errorf("derived: %q %q", c.DataDir, c.InitialCluster)
	}
	c = mustParse(t, []string{"--config-file", writeFile(t, "")}, nil)
	if c.Name != "default" {
		t.Errorf("empty file: %+v", c)
	}
	// etcd's file mode keeps the default advertise URL.
	mustParse(t, []string{"--config-file", writeFile(t, "listen-client-urls: http://0.0.0.0:2379\n")}, nil)

	for _, tc := range []struct{ body, want string }{
		{"snapshot-count: lots\n", `key "snapshot-count"`},
		{"- a\n- b\n", "mapping"},
		{"name: [unclosed\n", "invalid YAML"},
		{"heartbeat-interval: 100\nelection-timeout: 200\n", "at least 5 times"},
		{"client-transport-security: yes\n", "must be a mapping"},
		{"grpc-keepalive-min-time: {a: 1}\n", "mapping"},
		{"grpc-keepalive-min-time: 1.5\n", "nanoseconds"},
		{"listen-peer-urls: http://bad\n", "host:port"},
		{"experimental-watch-progress-notify-interval: 1s\nwatch-progress-notify-interval: 2s\n", "same setting"},
		{"enable-v2: true\n", "v2 API"},
	} {
		_, err := Parse([]string{"--config-file", writeFile(t, tc.body)}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %q: err = %v, want %q", tc.body, err, tc.want)
		}
	}
	_, err := Parse([]string{"--config-file", filepath.Join(t.TempDir(), "missing.yaml")}, nil)
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot read --config-file") {
		t.Errorf("missing file: %v", err)
	}
}

// Parse must not read files other than the config file.
func TestParseReadsOnlyTheConfigFile(t *testing.T) {
	var reads []string
	old := readFile
	readFile = func(p string) ([]byte, error) { reads = append(reads, p); return []byte("name: x\n"), nil }
	defer func() { readFile = old }()
	mustParse(t, []string{"--data-dir=/nonexistent", "--cert-file=/c", "--key-file=/k", "--trusted-ca-file=/ca"}, nil)
	if len(reads) != 0 {
		t.Errorf("reads without a config file: %q", reads)
	}
	mustParse(t, []string{"--config-file=/cfg.yaml"}, nil)
	if !reflect.DeepEqual(reads, []string{"/cfg.yaml"}) {
		t.Errorf("reads = %q", reads)
	}
}

// TestJoinEndpoints: Ballast's own flag takes ETCD_JOIN_ENDPOINTS like
// every other flag, and the command line wins.
func TestJoinEndpoints(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{nil, nil, ""},
		{nil, []string{"ETCD_JOIN_ENDPOINTS=http://c-client.ns.svc:2379"}, "http://c-client.ns.svc:2379"},
		{[]string{"--join-endpoints", "http://b:2379,http://a:2379"}, nil, "http://a:2379,http://b:2379"},
	} {
		c := mustParse(t, tc.args, tc.env)
		if got := joinURLs(c.JoinEndpoints); got != tc.want {
			t.Errorf("Parse(%q, %q): JoinEndpoints = %q, want %q", tc.args, tc.env, got, tc.want)
		}
		if hasWarning(c, "ETCD_JOIN_ENDPOINTS") {
			t.Errorf("Parse(%q, %q) warns about ETCD_JOIN_ENDPOINTS: %q", tc.args, tc.env, c.Warnings)
		}
	}
	if _, err := Parse([]string{"--join-endpoints=http://a:2379"}, []string{"ETCD_JOIN_ENDPOINTS=http://b:2379"}); err == nil {
		t.Error("--join-endpoints together with ETCD_JOIN_ENDPOINTS: no error")
	}
}
