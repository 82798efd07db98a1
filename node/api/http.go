package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/auth"
)

// healthTimeout bounds the read a health check makes (etcd: its request
// timeout, 5s plus two election timeouts by default).
const healthTimeout = 7 * time.Second

// HTTPOption adjusts NewHTTPHandler.
type HTTPOption func(*httpOptions)

type httpOptions struct {
	pprof, noGateway bool
	cors             []string
}

// WithCORS sets the origins allowed to call the HTTP endpoints from a
// browser (etcd's --cors; "*" allows any). Without it no CORS headers are
// sent.
func WithCORS(origins []string) HTTPOption { return func(o *httpOptions) { o.cors = origins } }

// WithPprof serves Go's profiler under /debug/pprof/ (etcd's
// --enable-pprof).
func WithPprof() HTTPOption { return func(o *httpOptions) { o.pprof = true } }

// NewHTTPHandler serves etcd's HTTP endpoints: /health, /livez, /readyz (and
// their per-check sub-paths), /version and /metrics from gatherer
// (prometheus.DefaultGatherer when nil). Served by Serve, it also has the
// gRPC gateway under /v3/ unless WithoutGateway.
func NewHTTPHandler(s Server, gatherer prometheus.Gatherer, lg *zap.Logger, opts ...HTTPOption) http.Handler {
	if lg == nil {
		lg = zap.NewNop()
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	var o httpOptions
	for _, opt := range opts {
		opt(&o)
	}
	h := &httpHandlers{s: s, lg: lg}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", h.health)
	h.checks(mux, "livez", []check{
		{"serializable_read", h.readCheck(true)},
	})
	h.checks(mux, "readyz", []check{
		{"data_corruption", h.corruptCheck},
		{"serializable_read", h.readCheck(true)},
		{"linearizable_read", h.readCheck(false)},
		{"non_learner", h.learnerCheck},
	})
	mux.HandleFunc("/version", h.version)
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	if o.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// Serve adds the gRPC gateway under /v3/ (gateway.go).
	return &httpRoot{Handler: mux, gateway: !o.noGateway, cors: o.cors}
}

type httpHandlers struct {
	s  Server
	lg *zap.Logger
}

func onlyGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// healthStatus is /health's JSON body, as etcd's.
type healthStatus struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// health answers /health like etcd: alarms (except those named in
// ?exclude=), a leader (unless ?serializable=true) and a read (linearizable
// unless ?serializable=true) must all be fine. The reasons are etcd's.
func (h *httpHandlers) health(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	q := r.URL.Query()
	serializable := q.Get("serializable") == "true"
	st := healthStatus{Health: "true"}
	if reason := h.alarmReason(q["exclude"]); reason != "" {
		st = healthStatus{Health: "false", Reason: reason}
	} else if !serializable && h.s.Leader() == 0 {
		st = healthStatus{Health: "false", Reason: "RAFT NO LEADER"}
	} else if err := h.read(r.Context(), serializable); err != nil {
		st = healthStatus{Health: "false", Reason: fmt.Sprintf("RANGE ERROR:%s", err)}
	}
	body, _ := json.Marshal(st)
	if st.Health != "true" {
		h.lg.Warn("serving /health false", zap.String("reason", st.Reason))
		http.Error(w, string(body), http.StatusServiceUnavailable)
		return
	}
	// etcd answers /health as text/plain, JSON body and all.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(body)
}

func (h *httpHandlers) alarmReason(excluded []string) string {
	for _, a := range h.s.Alarms() {
		name := a.Alarm.String()
		if contains(excluded, name) {
			continue
		}
		switch a.Alarm {
		case etcdserverpb.AlarmType_NOSPACE:
			return "ALARM NOSPACE"
		case etcdserverpb.AlarmType_CORRUPT:
			return "ALARM CORRUPT"
		default:
			return "ALARM UNKNOWN"
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// read makes the one-key, keys-only read etcd's health checks make, as the
// member itself (root), so that it works with authentication on.
func (h *httpHandlers) read(ctx context.Context, serializable bool) error {
	ctx, cancel := context.WithTimeout(auth.WithRoot(ctx), healthTimeout)
	defer cancel()
	_, err := h.s.Range(ctx, &etcdserverpb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1, Serializable: serializable})
	return err
}

type check struct {
	name string
	run  func(context.Context) error
}

func (h *httpHandlers) readCheck(serializable bool) func(context.Context) error {
	return func(ctx context.Context) error { return h.read(ctx, serializable) }
}

func (h *httpHandlers) corruptCheck(context.Context) error {
	for _, a := range h.s.Alarms() {
		if a.Alarm == etcdserverpb.AlarmType_CORRUPT {
			return fmt.Errorf("alarm activated: %s", a.Alarm)
		}
	}
	return nil
}

func (h *httpHandlers) learnerCheck(ctx context.Context) error {
	st, err := h.s.Status(auth.WithRoot(ctx)) // the member asks itself: no user needed
	if err != nil {
		return err
	}
	if st.IsLearner {
		return fmt.Errorf("not supported for learner")
	}
	return nil
}

// checks serves /<kind> running every check except those named in
// ?exclude=, and /<kind>/<check> running one, in etcd's format: 200 "ok"
// (preceded by one "[+]name ok" line per check with ?verbose), or 503 with
// "[-]name failed: reason" lines.
func (h *httpHandlers) checks(mux *http.ServeMux, kind string, all []check) {
	root := "/" + kind
	mux.HandleFunc(root, func(w http.ResponseWriter, r *http.Request) {
		excluded := r.URL.Query()["exclude"]
		run := make([]check, 0, len(all))
		for _, c := range all {
			if !contains(excluded, c.name) {
				run = append(run, c)
			}
		}
		h.runChecks(w, r, root, run)
	})
	for _, c := range all {
		path := root + "/" + c.name
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			h.runChecks(w, r, path, []check{c})
		})
	}
}

func (h *httpHandlers) runChecks(w http.ResponseWriter, r *http.Request, path string, run []check) {
	if !onlyGET(w, r) {
		return
	}
	var out strings.Builder
	failed := false
	for _, c := range run {
		if err := c.run(r.Context()); err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		h.lg.Warn("health check failed", zap.String("path", path), zap.String("reason", out.String()))
		http.Error(w, out.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, ok := r.URL.Query()["verbose"]; ok {
		fmt.Fprint(w, out.String())
	}
	fmt.Fprint(w, "ok\n")
}

// versions is /version's JSON body, as etcd's version.Versions.
type versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"`
}

func (h *httpHandlers) version(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	v := versions{Storage: "unknown"}
	v.Server, v.Cluster = h.s.Version()
	if v.Cluster == "" {
		v.Cluster = "not_decided"
	}
	ctx, cancel := context.WithTimeout(auth.WithRoot(r.Context()), time.Second) // no user needed, as etcd's /version
	if st, err := h.s.Status(ctx); err == nil && st.StorageVersion != "" {
		v.Storage = st.StorageVersion
	}
	cancel()
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// withCORS answers browsers as etcd does: the allowed origin ("*" or the
// caller's, when listed), the methods and headers etcd allows, and an empty
// 200 to preflight OPTIONS requests. With no origins, h is unchanged.
func withCORS(h http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return h
	}
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		switch {
		case any:
			w.Header().Set("Access-Control-Allow-Origin", "*")
		case origin != "" && slices.Contains(origins, origin):
			w.Header().Set("Access-Control-Allow-Origin", origin)
		default:
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		w.Header().Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			return
		}
		h.ServeHTTP(w, r)
	})
}
