package main

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/ballastdb/ballast/hack/bench/load"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestJudge(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	ge := target{Figure: "qps", Op: ">=", Ratio: 1.5}
	le := target{Figure: "p99", Op: "<=", Ratio: 1}
	tests := []struct {
		name string
		rw   row
		t    target
		want string
	}{
		{"no ratio", row{}, ge, "n/a"},
		{"pass", row{Ratio: f(1.6), RatioMin: f(1.55), RatioMax: f(1.7)}, ge, "pass"},
		{"fail", row{Ratio: f(1.2)}, ge, "fail"},
		{"pass but a round failed", row{Ratio: f(1.6), RatioMin: f(1.4), RatioMax: f(1.7)}, ge, "pass (noisy)"},
		{"lower is better pass", row{Ratio: f(0.8)}, le, "pass"},
		{"lower is better fail noisy", row{Ratio: f(1.1), RatioMin: f(0.9), RatioMax: f(1.3)}, le, "fail (noisy)"},
		{"equal meets", row{Ratio: f(1)}, le, "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.rw, tt.t); got != tt.want {
				t.Fatalf("judge = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	st, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.HWM < st.RSS || st.RssAnon <= 0 {
		t.Fatalf("implausible /proc figures: %+v", st)
	}
}

func TestPathRows(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	p50 := func(w string, e, b *float64) row {
		return row{Section: "single member", Workload: w, Figure: "p50", Unit: "ms", Etcd: e, Ballast: b}
	}
	tests := []struct {
		name       string
		rows       []row
		wantRow    bool
		etcd, ball *float64
		wantRatio  *float64
	}{
		{"both workloads", []row{p50("put-1c", f(0.6), f(0.5)), p50("range-ser-1c", f(0.2), f(0.15))}, true, f(0.4), f(0.35), f(0.875)},
		{"no read workload", []row{p50("put-1c", f(0.6), f(0.5))}, false, nil, nil, nil},
		{"a server without a figure", []row{p50("put-1c", nil, f(0.5)), p50("range-ser-1c", f(0.2), f(0.15))}, true, nil, f(0.35), nil},
		{"other figures ignored", []row{{Section: "single member", Workload: "put-1c", Figure: "p99", Etcd: f(1), Ballast: f(1)}, p50("range-ser-1c", f(0.2), f(0.15))}, false, nil, nil, nil},
	}
	near := func(a, b *float64) bool {
		if a == nil || b == nil {
			return a == b
		}
		return math.Abs(*a-*b) < 1e-9
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{Rows: tt.rows}
			r.pathRows()
			added := r.Rows[len(tt.rows):]
			if !tt.wantRow {
				if len(added) != 0 {
					t.Fatalf("added %+v, want nothing", added)
				}
				return
			}
			if len(added) != 1 {
				t.Fatalf("added %d rows, want 1", len(added))
			}
			got := added[0]
			if !near(got.Etcd, tt.etcd) || !near(got.Ballast, tt.ball) || !near(got.Ratio, tt.wantRatio) {
				t.Fatalf("etcd %v ballast %v ratio %v; want %v %v %v", fmtNum(got.Etcd), fmtNum(got.Ballast), fmtNum(got.Ratio),
					fmtNum(tt.etcd), fmtNum(tt.ball), fmtNum(tt.wantRatio))
			}
		})
	}
}

func TestParseWALFsync(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    walFsync
		wantErr bool
	}{
		{"histogram", `# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 10
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 12
etcd_disk_wal_fsync_duration_seconds_sum 0.0042
etcd_disk_wal_fsync_duration_seconds_count 12
etcd_disk_backend_commit_duration_seconds_sum 9
`, walFsync{Count: 12, Sec: 0.0042}, false},
		{"exponent form", "etcd_disk_wal_fsync_duration_seconds_sum 1.5e-05\netcd_disk_wal_fsync_duration_seconds_count 1\n", walFsync{Count: 1, Sec: 1.5e-5}, false},
		{"missing", "etcd_disk_backend_commit_duration_seconds_count 3\n", walFsync{}, true},
		{"only the count", "etcd_disk_wal_fsync_duration_seconds_count 3\n", walFsync{}, true},
		{"not a number", "etcd_disk_wal_fsync_duration_seconds_sum x\netcd_disk_wal_fsync_duration_seconds_count 3\n", walFsync{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWALFsync(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFloorBoundRows(t *testing.T) {
	mk := func(srv, w string, requests int, mean float64, fs *walFsync) sample {
		return sample{Phase: "single", Server: srv, Workload: w, WALFsync: fs,
			Result: load.Result{Requests: requests, Latency: load.Summary{Mean: mean}}}
	}
	fs := func(count, sec float64) *walFsync { return &walFsync{Count: count, Sec: sec} }
	samples := []sample{
		// etcd: 0.2 ms reads; 1000 puts of 0.7 ms with 2 fdatasyncs each of 0.2 ms.
		mk("etcd", "range-ser-1c", 1000, 0.2, fs(0, 0)),
		mk("etcd", "put-1c", 1000, 0.7, fs(2000, 0.4)),
		// Ballast: 0.15 ms reads; puts of 0.5 ms with one fdatasync of 0.2 ms.
		mk("ballast", "range-ser-1c", 1000, 0.15, fs(0, 0)),
		mk("ballast", "put-1c", 1000, 0.5, fs(1000, 0.2)),
	}
	r := &report{Samples: samples}
	r.floorBoundRows()
	if len(r.Rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(r.Rows))
	}
	near := func(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-9 }
	floor, beyond := r.Rows[0], r.Rows[1]
	if !near(floor.Etcd, 0.6) || !near(floor.Ballast, 0.35) || !near(floor.Ratio, 0.35/0.6) {
		t.Errorf("floor row: etcd %s ballast %s ratio %s", fmtNum(floor.Etcd), fmtNum(floor.Ballast), fmtNum(floor.Ratio))
	}
	if !strings.Contains(floor.Note, "= 2.00×") { // 0.7 ÷ 0.35
		t.Errorf("floor note %q does not give the bound 2.00×", floor.Note)
	}
	if !near(beyond.Etcd, 0.1) || !near(beyond.Ballast, 0.15) || !near(beyond.Ratio, 1.5) {
		t.Errorf("beyond row: etcd %s ballast %s ratio %s", fmtNum(beyond.Etcd), fmtNum(beyond.Ballast), fmtNum(beyond.Ratio))
	}

	// Without the servers' fdatasync counters there is no floor.
	samples[3].WALFsync = nil
	r = &report{Samples: samples}
	r.floorBoundRows()
	if len(r.Rows) != 0 {
		t.Fatalf("rows without fdatasync counters: %+v", r.Rows)
	}
}

func TestClientCPURows(t *testing.T) {
	mk := func(srv, w string, requests int, cpu float64) sample {
		return sample{Phase: "single", Server: srv, Workload: w, ClientCPUSec: cpu, Result: load.Result{Requests: requests}}
	}
	r := &report{Samples: []sample{
		mk("etcd", "put-1c", 1500, 0.45), mk("ballast", "put-1c", 1500, 0.30),
		mk("etcd", "range-ser-1c", 2000, 0.36), mk("ballast", "range-ser-1c", 2000, 0.28),
		mk("etcd", "put-100c", 10000, 2), mk("ballast", "put-100c", 10000, 2), // not a single-client figure
	}}
	r.clientCPURows()
	if len(r.Rows) != 2 {
		t.Fatalf("got %d rows, want one each for put-1c and range-ser-1c: %+v", len(r.Rows), r.Rows)
	}
	near := func(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-6 }
	put, get := r.Rows[0], r.Rows[1]
	if put.Workload != "put-1c" || !near(put.Etcd, 300) || !near(put.Ballast, 200) || !near(put.Ratio, 200.0/300) {
		t.Errorf("put row: %s etcd %s ballast %s ratio %s", put.Workload, fmtNum(put.Etcd), fmtNum(put.Ballast), fmtNum(put.Ratio))
	}
	if get.Workload != "range-ser-1c" || !near(get.Etcd, 180) || !near(get.Ballast, 140) {
		t.Errorf("range row: %s etcd %s ballast %s", get.Workload, fmtNum(get.Etcd), fmtNum(get.Ballast))
	}
}

func TestFsyncFiguresOnlyForPuts(t *testing.T) {
	ws := []workload{{Name: "put-1c", HasQPS: true}, {Name: "range-ser-1c", HasQPS: true}}
	var samples []sample
	for _, w := range ws {
		for _, srv := range []string{"etcd", "ballast"} {
			samples = append(samples, sample{Phase: "single", Server: srv, Workload: w.Name, WALFsync: &walFsync{Count: 10, Sec: 0.002},
				Result: load.Result{Requests: 10}})
		}
	}
	r := &report{Samples: samples}
	r.workloadRows("single member", "single", ws)
	got := map[string]bool{}
	for _, rw := range r.Rows {
		if rw.Figure == "WAL fdatasyncs per request" || rw.Figure == "WAL fdatasync mean" {
			got[rw.Workload+" "+rw.Figure] = true
			if rw.Figure == "WAL fdatasync mean" && (rw.Ballast == nil || math.Abs(*rw.Ballast-0.2) > 1e-9) {
				t.Errorf("fdatasync mean = %s ms, want 0.2", fmtNum(rw.Ballast))
			}
		}
	}
	want := map[string]bool{"put-1c WAL fdatasyncs per request": true, "put-1c WAL fdatasync mean": true}
	if len(got) != len(want) || !got["put-1c WAL fdatasyncs per request"] || !got["put-1c WAL fdatasync mean"] {
		t.Fatalf("fdatasync rows for %v, want %v", got, want)
	}
}
