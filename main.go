// Command ballast runs Ballast roles. "ballast node" is an etcd v3
// compatible member: it takes etcd's flags, environment variables and
// config file, so existing manifests and clients work unchanged.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ballastdb/ballast/controllers/operator"
	"github.com/ballastdb/ballast/node/config"
	"github.com/ballastdb/ballast/node/join"
	"github.com/ballastdb/ballast/node/server"
	"github.com/ballastdb/ballast/node/version"
)

const usage = `Ballast: an etcd v3 compatible key-value store.

Usage:
  ballast node [flags]      run a member (etcd's flags; see 'ballast node --help')
  ballast operator [flags]  run the Kubernetes operator for EtcdClusters (see 'ballast operator --help')
  ballast version           print the versions and exit
  ballast help              print this help
`

func main() {
	os.Exit(run(commandArgs(os.Args), os.Environ(), os.Stdout, os.Stderr))
}

// commandArgs is the command line without the program name. Invoked as
// "etcd" (a link or copy named so), the binary is `ballast node`: a drop-in
// for scripts and for tools that exec an etcd binary (controller-runtime's
// envtest).
func commandArgs(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	if strings.TrimSuffix(filepath.Base(argv[0]), ".exe") == "etcd" {
		return append([]string{"node"}, argv[1:]...)
	}
	return argv[1:]
}

// run is main without the process: it returns the exit status.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return config.ExitUsage
	}
	switch args[0] {
	case "node":
		return runNode(args[1:], environ, stdout, stderr)
	case "operator":
		return operator.Run(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		printVersion(stdout)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ballast: unknown command %q\n\n%s", args[0], usage)
		return config.ExitUsage
	}
}

// The garbage collector's target for a member, unless GOGC says otherwise.
// While the live heap (mostly the key index) is small next to what a busy
// server allocates per request, collecting at three times the live heap
// instead of twice halves the collector's CPU (a fifth of a
// linearizable-read load) for a few tens of MiB. A large keyspace goes back
// to Go's default, where the extra headroom would cost hundreds of MiB.
const (
	smallHeapGCPercent = 200
	largeHeapGCPercent = 100
	largeHeapBytes     = 64 << 20
)

func setGCPercent(environ []string) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOGC=") {
			return // the runtime already follows it
		}
	}
	gcTuner{}.start()
}

// gcTuner picks the GC percent from the live heap after every collection:
// a sentinel object's finalizer runs once per cycle and re-arms itself.
type gcTuner struct{}

type gcSentinel struct{ _ [16]byte }

func (g gcTuner) start() {
	debug.SetGCPercent(smallHeapGCPercent)
	g.arm(smallHeapGCPercent)
}

func (g gcTuner) arm(current int) {
	s := &gcSentinel{}
	runtime.SetFinalizer(s, func(*gcSentinel) {
		want := smallHeapGCPercent
		if liveHeapBytes() > largeHeapBytes {
			want = largeHeapGCPercent
		}
		if want != current {
			debug.SetGCPercent(want)
		}
		g.arm(want)
	})
}

// liveHeapBytes is the heap the last collection found live.
func liveHeapBytes() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

func runNode(args, environ []string, stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, environ)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Fprint(stdout, config.Usage())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "ballast node: %v\nsee 'ballast node --help'\n", err)
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return ue.ExitCode()
		}
		return 1
	case cfg.PrintVersion:
		printVersion(stdout)
		return 0
	}

	lg, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ballast node: cannot set up logging: %v\nsee 'ballast node --help'\n", err)
		return config.ExitUsage
	}
	defer func() { _ = lg.Sync() }()
	for _, w := range cfg.Warnings {
		lg.Warn(w)
	}
	setGCPercent(environ)
	lg.Info("starting ballast node",
		zap.String("etcd-version", version.APIVersion),
		zap.String("ballast-version", version.Version),
		zap.String("git-sha", version.GitSHA),
		zap.String("go-version", version.GoVersion()),
		zap.String("go-os-arch", version.Platform()),
		zap.String("name", cfg.Name),
		zap.String("data-dir", cfg.DataDir),
	)

	// SIGTERM and SIGINT cancel ctx; the server then hands off leadership
	// and stops. A second signal kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := server.Run(ctx, cfg, lg); err != nil && !errors.Is(err, context.Canceled) {
		lg.Error("ballast node stopped with an error", zap.Error(err))
		return join.ExitStatus(err, lg) // join.ExitReplace when the member must be replaced
	}
	lg.Info("ballast node stopped")
	return 0
}

// printVersion mirrors etcd --version, adding Ballast's own version.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "etcd Version: %s\n", version.APIVersion)
	fmt.Fprintf(w, "Ballast Version: %s\n", version.Version)
	fmt.Fprintf(w, "Git SHA: %s\n", version.GitSHA)
	fmt.Fprintf(w, "Go Version: %s\n", version.GoVersion())
	fmt.Fprintf(w, "Go OS/Arch: %s\n", version.Platform())
}

// newLogger builds the zap logger etcd would: JSON lines with ts, level,
// msg and caller, ISO-8601 timestamps, to the --log-outputs targets.
// "default" and "stderr" go to stderr (the writer given, for tests).
func newLogger(cfg *config.Config, stderr io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
	encoder := zapcore.NewJSONEncoder(enc)
	if cfg.LogFormat == "console" {
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	var sinks []zapcore.WriteSyncer
	for _, out := range cfg.LogOutputs {
		switch out {
		case "default", "stderr":
			sinks = append(sinks, zapcore.Lock(zapcore.AddSync(stderr)))
		case "stdout":
			sinks = append(sinks, zapcore.Lock(os.Stdout))
		default:
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("--log-outputs: %w", err)
			}
			sinks = append(sinks, zapcore.Lock(f))
		}
	}
	core := zapcore.NewCore(encoder, zapcore.NewMultiWriteSyncer(sinks...), zap.NewAtomicLevelAt(level))
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), nil
}
