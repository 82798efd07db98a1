//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// env is what the suite runs against, from make e2e.
var env struct {
	kind, helm     string // pinned binaries
	nodeImage      string // kind node image (local build or stock)
	image          string // the Ballast image, repository:tag
	imageArchive   string // its docker-archive, loaded into the nodes
	cluster        string // kind cluster name
	kubeconfig     string
	keepCluster    bool
	operatorNS     string
	clusterNS      string // where the EtcdClusters live
	releaseName    string
	imageRepo, tag string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// client-go's port-forward reports every broken stream through klog;
	// the suite kills pods on purpose, and those reports would bury its
	// own output. Failures still reach the tests as errors.
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var missing []string
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	env.kind = need("KIND")
	env.helm = need("HELM")
	env.nodeImage = need("KIND_NODE_IMAGE")
	env.image = need("BALLAST_IMAGE")
	env.imageArchive = need("BALLAST_IMAGE_ARCHIVE")
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %s not set; run make e2e\n", strings.Join(missing, ", "))
		return 2
	}
	env.cluster = envOr("E2E_CLUSTER", "ballast-e2e")
	env.keepCluster = os.Getenv("E2E_KEEP_CLUSTER") == "1"
	env.operatorNS = "ballast-system"
	env.clusterNS = "e2e"
	env.releaseName = "ballast"
	i := strings.LastIndex(env.image, ":")
	if i < 0 {
		fmt.Fprintf(os.Stderr, "e2e: BALLAST_IMAGE %q has no tag\n", env.image)
		return 2
	}
	env.imageRepo, env.tag = env.image[:i], env.image[i+1:]
	dir, err := os.MkdirTemp("", "ballast-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.kubeconfig = filepath.Join(dir, "kubeconfig")

	// The cluster is made by the same script as make kind-up, so that the
	// privileged-container workaround (hack/kind/docker-shim) lives in one
	// place.
	logf("creating kind cluster %s from %s", env.cluster, env.nodeImage)
	if err := command(20*time.Minute, []string{"KIND_CLUSTER=" + env.cluster, "KIND_NODE_IMAGE=" + env.nodeImage,
		"KIND_KUBECONFIG=" + env.kubeconfig}, "../hack/kind/up.sh"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: creating the kind cluster: %v\n", err)
		deleteCluster()
		return 1
	}
	defer deleteCluster()

	logf("loading %s into the cluster", env.image)
	if err := command(10*time.Minute, nil, env.kind, "load", "image-archive", env.imageArchive, "--name", env.cluster); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: loading the image: %v\n", err)
		return 1
	}
	return m.Run()
}

func deleteCluster() {
	if env.keepCluster {
		logf("E2E_KEEP_CLUSTER=1: keeping kind cluster %s; KUBECONFIG=%s; delete it with KIND_CLUSTER=%s make kind-down",
			env.cluster, env.kubeconfig, env.cluster)
		return
	}
	if err := command(5*time.Minute, nil, env.kind, "delete", "cluster", "--name", env.cluster); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: deleting the kind cluster: %v\n", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s e2e: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// command runs a program with extra environment entries (NAME=VALUE), its
// output going to the test's stderr.
func command(timeout time.Duration, extraEnv []string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// helmCmd runs helm against the e2e cluster.
func helmCmd(t *testing.T, timeout time.Duration, args ...string) {
	t.Helper()
	home := t.TempDir()
	extra := []string{"HELM_CACHE_HOME=" + home, "HELM_CONFIG_HOME=" + home, "HELM_DATA_HOME=" + home,
		"KUBECONFIG=" + env.kubeconfig}
	if err := command(timeout, extra, env.helm, args...); err != nil {
		t.Fatal(err)
	}
}
