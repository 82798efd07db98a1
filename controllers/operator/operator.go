// Package operator is `ballast operator`: flags, logging and the
// controller-runtime manager that runs the EtcdCluster reconciler, with
// leader election, metrics and health endpoints. Tests build the same
// manager with NewManager, substituting how members are reached.
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/member"
)

// Options configure the manager.
type Options struct {
	MetricsBindAddress     string // "0" disables metrics
	HealthProbeBindAddress string // "0" disables probes
	LeaderElect            bool
	LeaderElectionID       string
	// LeaderElectionNamespace: empty means the namespace the operator
	// runs in (in-cluster).
	LeaderElectionNamespace string
	// WatchNamespaces limits the operator to these namespaces; empty
	// means all.
	WatchNamespaces []string
	// DefaultImageRepository for member pods whose spec.image is empty.
	DefaultImageRepository string

	// URLs and Members default to the in-cluster DNS names and real
	// clients; tests substitute loopback members.
	URLs    desired.URLs
	Members member.Factory
	// ControllerName distinguishes managers started in one test process
	// (controller names must be unique per process). Empty: "etcdcluster".
	ControllerName string
}

// Scheme holds the API types the operator reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// NewManager builds the manager with the EtcdCluster controller. The
// informers see only objects labelled as the operator's, so a large
// cluster's other pods, Services and ConfigMaps are never cached.
func NewManager(cfg *rest.Config, o Options) (manager.Manager, error) {
	if o.URLs == nil {
		o.URLs = desired.DNS{}
	}
	if o.Members == nil {
		o.Members = member.New
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = DefaultLeaderElectionID
	}
	ours := labels.SelectorFromSet(labels.Set{desired.LabelManagedBy: desired.ManagedBy})
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   {Label: ours},
			&corev1.Service{}:               {Label: ours},
			&corev1.ConfigMap{}:             {Label: ours},
			&appsv1.StatefulSet{}:           {Label: ours},
			&policyv1.PodDisruptionBudget{}: {Label: ours},
		},
	}
	if len(o.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        Scheme(),
		Cache:                         cacheOpts,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// The reconciler keeps no state, so a stopping manager need not
		// wait long for one to finish.
		GracefulShutdownTimeout: ptr(15 * time.Second),
	})
	if err != nil {
		return nil, err
	}
	r := &controllers.EtcdClusterReconciler{
		Client:      mgr.GetClient(),
		Recorder:    mgr.GetEventRecorder("ballast-operator"),
		URLs:        o.URLs,
		Members:     o.Members,
		StatefulSet: desired.StatefulSetOptions{DefaultImageRepository: o.DefaultImageRepository},
	}
	if err := r.SetupWithManager(mgr, o.ControllerName); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// DefaultLeaderElectionID names the operator's leader election Lease.
const DefaultLeaderElectionID = "ballast-operator.etcd.ballast.dev"

const usage = `Usage: ballast operator [flags]

Runs the EtcdCluster operator (etcd.ballast.dev/v1alpha1) with the
kubeconfig given by --kubeconfig, $KUBECONFIG, the in-cluster service
account, or ~/.kube/config, in that order.

Flags:
`

// Run is `ballast operator`: it returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ballast operator", flag.ContinueOnError)
	var (
		o          Options
		namespaces string
		logLevel   string
		logFormat  string
	)
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints (0 disables them)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader among operator replicas; only the leader reconciles")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", DefaultLeaderElectionID, "name of the leader election Lease")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own namespace)")
	fs.StringVar(&namespaces, "watch-namespaces", "", "comma-separated namespaces to manage (default: all)")
	fs.StringVar(&o.DefaultImageRepository, "default-image", desired.DefaultImageRepository, "image repository of member pods whose spec.image is empty; the tag is spec.version")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or console")
	config.RegisterFlags(fs)
	printUsage := func(w io.Writer) {
		// The layout of `ballast node --help`: --flag 'default', then
		// what it does.
		fmt.Fprint(w, usage)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(w, "  --%s '%s'\n    %s\n", f.Name, f.DefValue, f.Usage)
		})
	}
	// The flag package would print errors and usage itself; Run prints
	// them the way `ballast node` does.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "ballast operator: %v\nsee 'ballast operator --help'\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ballast operator: unexpected argument %q\nsee 'ballast operator --help'\n", fs.Arg(0))
		return 2
	}
	for _, ns := range strings.Split(namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			o.WatchNamespaces = append(o.WatchNamespaces, ns)
		}
	}

	lg, err := newLogger(logLevel, logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ballast operator: %v\nsee 'ballast operator --help'\n", err)
		return 2
	}
	defer func() { _ = lg.Sync() }()
	logr := zapr.NewLogger(lg)
	ctrl.SetLogger(logr)
	klog.SetLogger(logr)

	cfg, err := config.GetConfig()
	if err != nil {
		lg.Error("no Kubernetes configuration: run in a pod with a service account, or pass --kubeconfig", zap.Error(err))
		return 1
	}
	mgr, err := NewManager(cfg, o)
	if err != nil {
		lg.Error("cannot set up the operator", zap.Error(err))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	lg.Info("starting ballast operator",
		zap.Strings("watch-namespaces", o.WatchNamespaces),
		zap.Bool("leader-elect", o.LeaderElect),
		zap.String("metrics-bind-address", o.MetricsBindAddress),
		zap.String("host", cfg.Host))
	if err := mgr.Start(ctx); err != nil {
		lg.Error("ballast operator stopped with an error", zap.Error(err))
		return 1
	}
	lg.Info("ballast operator stopped")
	return 0
}

// newLogger builds a zap logger in the style of `ballast node`'s: JSON
// lines with ts, level, msg and caller.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	enc := zapcore.EncoderConfig{
		TimeKey: "ts", LevelKey: "level", NameKey: "logger", CallerKey: "caller", MessageKey: "msg",
		StacktraceKey: "stacktrace", LineEnding: zapcore.DefaultLineEnding,
		EncodeLevel: zapcore.LowercaseLevelEncoder, EncodeTime: zapcore.ISO8601TimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder, EncodeCaller: zapcore.ShortCallerEncoder,
	}
	var encoder zapcore.Encoder
	switch format {
	case "json":
		encoder = zapcore.NewJSONEncoder(enc)
	case "console":
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or console", format)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), zap.NewAtomicLevelAt(lvl))
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), nil
}

func ptr[T any](v T) *T { return &v }
