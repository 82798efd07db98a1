package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// endpoint status in the simple format: blank the db sizes and the
// percentage of the db in use (fields 5-7, 1-based).
func normStatusSimple(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		f := strings.Split(l, ", ")
		if len(f) >= 13 && strings.HasPrefix(f[0], "<client-url>") {
			f[4], f[5], f[6] = "<size>", "<size>", "<pct>"
			f[10] = "<term>"
			lines[i] = strings.Join(f, ", ")
		}
	}
	return strings.Join(lines, "\n")
}

// endpoint status in the table format: blank the same cells in the row.
func normStatusTable(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		f := strings.Split(l, "│")
		if len(f) >= 14 && strings.TrimSpace(f[1]) == "<client-url>" {
			f[5], f[6], f[7], f[11] = " <size> ", " <size> ", " <pct> ", " <term> "
			lines[i] = strings.Join(f, "│")
		}
	}
	return strings.Join(lines, "\n")
}

var hashRe = regexp.MustCompile(`"hash":\d+`)

// etcdutl's snapshot hash covers every bucket, member and cluster IDs and the
// raft indexes included, so it cannot match between two clusters.
func normSnapHash(s string) string { return hashRe.ReplaceAllString(s, `"hash":<hash>`) }

func httpGet(path string) func(ctx context.Context, e *env) string {
	return func(ctx context.Context, e *env) string {
		return httpDo(ctx, e, http.MethodGet, path, "")
	}
}

func httpDo(ctx context.Context, e *env, method, path, body string) string {
	req, err := http.NewRequestWithContext(ctx, method, e.srv.client+path, strings.NewReader(body))
	if err != nil {
		return err.Error() + "\n"
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("%s %s: %v\n", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return fmt.Sprintf("%s %s: %d %s\n%s\n", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), compactJSON(b))
}

// compactJSON is a response body without insignificant blanks: protojson,
// which both gateways use, varies the blanks between fields on purpose from
// one build to the next. A body that is not JSON is returned trimmed.
func compactJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, bytes.TrimSpace(b)); err != nil {
		return strings.TrimSpace(string(b))
	}
	return out.String()
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("put", "a", "1"),
		ctl("put", "b", "2"),
		ctl("put", "a", "3"),
		ctl("endpoint", "status", "-w", "json"),
		{ctl: []string{"endpoint", "status"}, norm: normStatusSimple},
		{ctl: []string{"endpoint", "status", "-w", "table"}, norm: normStatusTable},
		{ctl: []string{"endpoint", "status", "--cluster"}, norm: normStatusSimple},
		ctl("endpoint", "health", "-w", "json"),
		ctl("endpoint", "health"),
		ctl("endpoint", "health", "--cluster", "-w", "json"),
		ctl("endpoint", "hashkv", "-w", "json"),
		ctl("endpoint", "hashkv"),
		ctl("endpoint", "hashkv", "--rev", "3", "-w", "json"),
		ctl("member", "list"),
		ctl("member", "list", "-w", "json"),
		ctl("member", "list", "-w", "table"),
		ctl("member", "list", "--consistency", "s", "-w", "json"),
		ctlFail("member", "promote", "{{member}}"),
		ctlFail("member", "remove", "1234"),
		ctlFail("member", "update", "1234", "--peer-urls", "http://127.0.0.1:1"),
		ctlFail("move-leader", "1234"),
		ctl("move-leader", "{{member}}"),
		ctl("alarm", "list"),
		ctl("alarm", "list", "-w", "json"),
		ctl("alarm", "disarm"),
		ctl("alarm", "disarm", "-w", "json"),
		ctl("defrag"),
		ctl("defrag", "-w", "json"),
		ctl("get", "", "--prefix", "-w", "json"),
		ctl("snapshot", "save", "{{tmp}}/snap.db"),
		{utl: []string{"snapshot", "status", "{{tmp}}/snap.db", "-w", "json"}, norm: normSnapHash},
		{utl: []string{"snapshot", "status", "{{tmp}}/snap.db"}, norm: func(s string) string {
			return regexp.MustCompile(`(?m)^[0-9a-f]+, `).ReplaceAllString(s, "<hash>, ")
		}},
		utl("hashkv", "{{tmp}}/snap.db"),
		ctl("auth", "status"),
		ctl("user", "list"),
		ctl("role", "list"),
		fn("GET /version", httpGet("/version")),
		fn("GET /health", httpGet("/health")),
		fn("GET /health?serializable=true", httpGet("/health?serializable=true")),
		fn("GET /livez", httpGet("/livez")),
		fn("GET /readyz", httpGet("/readyz")),
		// etcd prints the checks in map order, which varies between runs.
		{desc: "GET /readyz?verbose", fn: httpGet("/readyz?verbose"), norm: sortLines},
		fn("gateway POST /v3/kv/range", func(ctx context.Context, e *env) string {
			return httpDo(ctx, e, http.MethodPost, "/v3/kv/range", `{"key":"YQ=="}`)
		}),
		fn("gateway POST /v3/kv/put", func(ctx context.Context, e *env) string {
			return httpDo(ctx, e, http.MethodPost, "/v3/kv/put", `{"key":"Yw==","value":"NA=="}`)
		}),
		fn("gateway POST /v3/maintenance/status", func(ctx context.Context, e *env) string {
			s := httpDo(ctx, e, http.MethodPost, "/v3/maintenance/status", `{}`)
			return regexp.MustCompile(`"(dbSize|dbSizeInUse)":"\d+"`).ReplaceAllString(s, `"$1":"<size>"`)
		}),
		fn("gateway POST /v3/kv/range with an empty key", func(ctx context.Context, e *env) string {
			return httpDo(ctx, e, http.MethodPost, "/v3/kv/range", `{}`)
		}),
	}
	runScenario(t, scenario{name: "maintenance", steps: steps})
}

// TestNoSpaceAlarm runs with a backend quota so small that the first write
// raises the NOSPACE alarm.
func TestNoSpaceAlarm(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctlFail("put", "a", "1"),
		waitAlarm,
		ctl("alarm", "list"),
		ctl("alarm", "list", "-w", "json"),
		ctlFail("put", "a", "1"),
		ctl("get", "a", "-w", "json"),
		ctl("del", "a"),
		ctlFail("lease", "grant", "100"),
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put b 1"}, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"del a"}, nil)},
		ctlFail("endpoint", "health"),
		ctlFail("endpoint", "health", "-w", "json"),
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"get a"}, nil)},
		ctl("compaction", "1"),
		ctl("endpoint", "status", "-w", "json"),
		ctl("alarm", "disarm"),
		ctl("alarm", "list"),
		ctlFail("put", "a", "1"),
		waitAlarm,
		ctl("alarm", "list"),
		fn("GET /health", httpGet("/health")),
		fn("GET /readyz", httpGet("/readyz")),
	}
	runScenario(t, scenario{name: "nospace", flags: []string{"--quota-backend-bytes", "1"}, steps: steps})
}

// waitAlarm polls (bounded) until an alarm is listed: the NOSPACE alarm is
// proposed after the rejected write has returned.
var waitAlarm = fn("(wait for the alarm to be applied)", func(ctx context.Context, e *env) string {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r, err := e.c.AlarmList(ctx)
		if err == nil && len(r.Alarms) > 0 {
			return fmt.Sprintf("%d alarm(s)\n", len(r.Alarms))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "no alarm within 5s\n"
})

// sortLines sorts the lines of s, for output whose order etcd leaves to
// chance.
func sortLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}
