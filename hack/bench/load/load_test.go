package load

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of 4 is the 2nd (nearest rank)", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(1, 100)...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", ms(seq(1, 100)...), 0.999, 100 * time.Millisecond},
		{"p100", ms(1, 2, 3), 1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := Summarize(lat)
	want := Summary{N: 4, Mean: 2.5, P50: 2, P90: 4, P99: 4, P999: 4, Max: 4}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		prefix string
		n      int
		size   int
		want   string
	}{
		{"", 42, 8, "00000042"},
		{"r/", 7, 8, "r/000007"},
		{"r/", 1234567, 8, "r/1234567"}, // longer than size rather than ambiguous
		{"long-prefix/", 3, 4, "long-prefix/3"},
	}
	for _, tt := range tests {
		if got := Key(tt.prefix, tt.n, tt.size); got != tt.want {
			t.Errorf("Key(%q, %d, %d) = %q, want %q", tt.prefix, tt.n, tt.size, got, tt.want)
		}
	}
}
