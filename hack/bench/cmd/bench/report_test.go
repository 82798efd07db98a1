package main

import (
	"math"
	"os"
	"testing"
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
