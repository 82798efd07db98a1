package main

import "testing"

func TestStealPercent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		want     float64
	}{
		{"an eighth stolen",
			"cpu  100 0 50 800 10 0 5 35 0 0",
			"cpu  200 0 100 1000 10 0 5 85 7 0", // guest (7) is inside user already
			12.5},
		{"none stolen", "cpu 1 2 3 4 5 6 7 0", "cpu 11 2 3 4 5 6 7 0", 0},
		{"no steal column (old kernels)", "cpu 1 2 3 4 5 6 7", "cpu 2 2 3 4 5 6 7", -1},
		{"not the cpu line", "intr 1 2 3 4 5 6 7 8", "intr 2 2 3 4 5 6 7 8", -1},
		{"no time passed", "cpu 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7 8", -1},
	} {
		if got := stealPercent(parseCPUTicks(tc.from), parseCPUTicks(tc.to)); got != tc.want {
			t.Errorf("%s: stealPercent = %v, want %v", tc.name, got, tc.want)
		}
	}
}
