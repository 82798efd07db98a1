package kubesim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// maxTerminationMessage is the kubelet's limit on a termination message.
const maxTerminationMessage = 4096

// container is the member container of one pod: at most one process at a
// time, restarted after it exits (unless the test holds it).
type container struct {
	sim       *Sim
	podName   string
	podUID    types.UID
	namespace string

	mu       sync.Mutex
	proc     *process // current run; nil before the first start
	restarts int32
	// last is the previous run's end, for lastState.
	last      *corev1.ContainerStateTerminated
	exitedAt  time.Time
	ready     bool
	stopped   bool // the pod is going away: never start again
	startedAt time.Time
}

type process struct {
	cmd      *exec.Cmd
	termLog  string
	exited   chan struct{}
	exitCode int32
}

func (c *container) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil && !isClosed(c.proc.exited)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sync starts the container if it should run, probes it, and writes the
// pod's status.
func (c *container) sync(ctx context.Context, pod *corev1.Pod) (ctrl.Result, error) {
	s := c.sim
	cl, ord, err := clusterOf(pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	clientURL := s.o.URLs.ClientURL(cl, ord)

	c.mu.Lock()
	var requeue time.Duration
	switch {
	case c.proc != nil && !isClosed(c.proc.exited):
		// Running: probe below.
	case c.stopped:
	case s.isHeld(c.podName):
	case c.proc != nil && time.Since(c.exitedAt) < s.o.RestartDelay:
		requeue = s.o.RestartDelay - time.Since(c.exitedAt)
	default:
		if c.proc != nil {
			c.restarts++
		}
		if err := c.start(ctx, pod, cl, ord); err != nil {
			c.mu.Unlock()
			return ctrl.Result{}, err
		}
	}
	running := c.proc != nil && !isClosed(c.proc.exited)
	c.mu.Unlock()

	ready := false
	if running {
		ready = probe(ctx, clientURL)
		requeue = s.o.ProbePeriod
	}
	c.mu.Lock()
	c.ready = ready
	status := c.statusLocked(pod)
	c.mu.Unlock()

	if err := c.writeStatus(ctx, pod, status, ready); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// start runs the process for the pod. Called with c.mu held.
func (c *container) start(ctx context.Context, pod *corev1.Pod, clus *v1alpha1.EtcdCluster, ord int) error {
	s := c.sim
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("pod %s: kubesim runs exactly one container", pod.Name)
	}
	spec := pod.Spec.Containers[0]
	env, err := c.environment(ctx, pod, spec)
	if err != nil {
		return err
	}
	clientURL, peerURL := s.o.URLs.ClientURL(clus, ord), s.o.URLs.PeerURL(clus, ord)
	env["ETCD_LISTEN_CLIENT_URLS"] = clientURL
	env["ETCD_ADVERTISE_CLIENT_URLS"] = clientURL
	env["ETCD_LISTEN_PEER_URLS"] = peerURL
	env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] = peerURL

	// Mounts: a claim's directory is named after its UID, an emptyDir's
	// after the pod's.
	mounts := map[string]string{}
	for _, vm := range spec.VolumeMounts {
		dir, err := c.volumeDir(ctx, pod, vm.Name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		mounts[vm.MountPath] = dir
	}
	for k, v := range env {
		for mp, dir := range mounts {
			if v == mp || strings.HasPrefix(v, mp+"/") {
				env[k] = dir + strings.TrimPrefix(v, mp)
			}
		}
	}

	run := int(c.restarts)
	termLog := filepath.Join(s.o.Dir, "termination", fmt.Sprintf("%s.%s.%d", pod.Name, pod.UID, run))
	logPath := filepath.Join(s.o.Dir, "logs", fmt.Sprintf("%s.%s.%02d.log", pod.Name, pod.UID[:8], run))
	for _, d := range []string{filepath.Dir(termLog), filepath.Dir(logPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	env["BALLAST_TERMINATION_LOG"] = termLog
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	envList = append(envList, s.o.ExtraEnv...)

	args := append(append([]string(nil), spec.Command...), spec.Args...)
	if len(spec.Command) > 0 {
		args = args[1:] // the image's binary is the ballast binary
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "# %s %s\n", s.o.Ballast, strings.Join(args, " "))
	cmd := exec.Command(s.o.Ballast, args...)
	cmd.Env = envList
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting the container of %s: %w", pod.Name, err)
	}
	p := &process{cmd: cmd, termLog: termLog, exited: make(chan struct{})}
	c.proc = p
	c.startedAt = time.Now()
	c.ready = false
	s.o.Logf("kubesim: started %s (run %d, pid %d)", pod.Name, run, cmd.Process.Pid)
	go func() {
		err := cmd.Wait()
		logf.Close()
		code := int32(0)
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int32(ws.Signal())
				} else {
					code = int32(ee.ExitCode())
				}
			}
		}
		c.mu.Lock()
		p.exitCode = code
		msg, _ := os.ReadFile(termLog)
		if len(msg) > maxTerminationMessage {
			msg = msg[:maxTerminationMessage]
		}
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		c.last = &corev1.ContainerStateTerminated{
			ExitCode:   code,
			Reason:     reason,
			Message:    string(msg),
			StartedAt:  metav1.NewTime(c.startedAt),
			FinishedAt: metav1.Now(),
		}
		c.exitedAt = time.Now()
		c.ready = false
		close(p.exited)
		c.mu.Unlock()
		s.o.Logf("kubesim: %s exited with %d; termination message %q", c.podName, code, strings.TrimSpace(string(msg)))
		s.poke(c.namespace, c.podName)
	}()
	return nil
}

// environment resolves the container's variables the way the kubelet does
// at container start: envFrom first, then env in order with $(VAR)
// references to earlier ones, and pod fields.
func (c *container) environment(ctx context.Context, pod *corev1.Pod, spec corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	for _, src := range spec.EnvFrom {
		if src.ConfigMapRef == nil {
			return nil, fmt.Errorf("pod %s: kubesim resolves envFrom configMapRef only", pod.Name)
		}
		cm := &corev1.ConfigMap{}
		if err := c.sim.c.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: src.ConfigMapRef.Name}, cm); err != nil {
			return nil, fmt.Errorf("pod %s: envFrom: %w", pod.Name, err)
		}
		for k, v := range cm.Data {
			env[src.Prefix+k] = v
		}
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range spec.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = ref.ReplaceAllStringFunc(e.Value, func(m string) string {
				if v, ok := env[m[2:len(m)-1]]; ok {
					return v
				}
				return m
			})
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				env[e.Name] = pod.Name
			case "metadata.namespace":
				env[e.Name] = pod.Namespace
			default:
				return nil, fmt.Errorf("pod %s: kubesim does not resolve field %s", pod.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		default:
			return nil, fmt.Errorf("pod %s: kubesim does not resolve %s", pod.Name, e.Name)
		}
	}
	return env, nil
}

func (c *container) volumeDir(ctx context.Context, pod *corev1.Pod, volume string) (string, error) {
	for _, v := range pod.Spec.Volumes {
		if v.Name != volume {
			continue
		}
		switch {
		case v.PersistentVolumeClaim != nil:
			return c.sim.VolumeDir(ctx, v.PersistentVolumeClaim.ClaimName)
		case v.EmptyDir != nil:
			return filepath.Join(c.sim.o.Dir, "volumes", "pod-"+string(pod.UID)+"-"+volume), nil
		default:
			return "", fmt.Errorf("pod %s: kubesim supports claims and emptyDir volumes only", pod.Name)
		}
	}
	return "", fmt.Errorf("pod %s: no volume %q", pod.Name, volume)
}

// statusLocked is the container's status as the kubelet reports it.
func (c *container) statusLocked(pod *corev1.Pod) corev1.ContainerStatus {
	spec := pod.Spec.Containers[0]
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: "kubesim://" + spec.Image, RestartCount: c.restarts}
	running := c.proc != nil && !isClosed(c.proc.exited)
	switch {
	case running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
		cs.Ready = c.ready
		started := true
		cs.Started = &started
		if c.last != nil && c.restarts > 0 {
			cs.LastTerminationState.Terminated = c.last
		}
	case c.proc == nil:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		// Exited: waiting to be restarted, the run that ended in
		// lastState — what a real kubelet shows during back-off.
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s in pod %s", spec.Name, pod.Name)}
		cs.LastTerminationState.Terminated = c.last
	}
	return cs
}

func (c *container) writeStatus(ctx context.Context, pod *corev1.Pod, cs corev1.ContainerStatus, ready bool) error {
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		st := corev1.ConditionFalse
		if ok {
			st = corev1.ConditionTrue
		}
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == st {
				return old
			}
		}
		return corev1.PodCondition{Type: t, Status: st, LastTransitionTime: now}
	}
	want := pod.DeepCopy()
	want.Status.Phase = corev1.PodRunning
	if cs.State.Waiting != nil && cs.State.Waiting.Reason == "ContainerCreating" {
		want.Status.Phase = corev1.PodPending
	}
	want.Status.HostIP = "127.0.0.1"
	want.Status.PodIP = "127.0.0.1"
	if want.Status.StartTime == nil {
		want.Status.StartTime = &now
	}
	want.Status.Conditions = []corev1.PodCondition{
		cond(corev1.PodScheduled, true),
		cond(corev1.PodInitialized, true),
		cond(corev1.ContainersReady, ready),
		cond(corev1.PodReady, ready),
	}
	want.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	if equalStatus(pod.Status, want.Status) {
		return nil
	}
	return c.sim.c.Status().Update(ctx, want)
}

// equalStatus ignores timestamps' sub-second parts, which the API server
// truncates.
func equalStatus(a, b corev1.PodStatus) bool {
	strip := func(s corev1.PodStatus) string {
		s = *s.DeepCopy()
		s.StartTime = nil
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		for i := range s.ContainerStatuses {
			cs := &s.ContainerStatuses[i]
			if cs.State.Running != nil {
				cs.State.Running.StartedAt = metav1.Time{}
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				t.StartedAt, t.FinishedAt = metav1.Time{}, metav1.Time{}
			}
		}
		return fmt.Sprintf("%+v", s)
	}
	return strip(a) == strip(b)
}

// stop ends the process: SIGTERM, then SIGKILL after grace (at once for
// grace 0). The container never starts again.
func (c *container) stop(grace time.Duration) {
	c.mu.Lock()
	c.stopped = true
	p := c.proc
	c.mu.Unlock()
	if p == nil || isClosed(p.exited) {
		return
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// kill SIGKILLs the current process and waits for it to be gone; the
// container may start again (unless held).
func (c *container) kill() {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil || isClosed(p.exited) {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}
