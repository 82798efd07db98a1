package lease

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// checkHeap verifies heap order and that every lease knows its index.
func checkHeap(t *testing.T, h expiryHeap) {
	t.Helper()
	for i, ls := range h {
		if ls.index != i {
			t.Fatalf("lease %d: index %d, at %d", ls.ID, ls.index, i)
		}
		if i > 0 && h[(i-1)/2].deadline > ls.deadline {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

func TestExpiryHeapAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h expiryHeap
	live := map[int64]*Lease{}
	for i := int64(1); i <= 2000; i++ {
		switch op := r.IntN(4); {
		case op <= 1 || len(live) == 0:
			ls := &Lease{ID: i, deadline: r.Int64N(1000)}
			live[i] = ls
			h.push(ls)
		case op == 2:
			for _, ls := range live {
				ls.deadline = r.Int64N(1000)
				h.fix(ls.index)
				break
			}
		default:
			for id, ls := range live {
				h.remove(ls.index)
				if ls.index != -1 {
					t.Fatal("removed lease keeps an index")
				}
				delete(live, id)
				break
			}
		}
		checkHeap(t, h)
	}
	var want []int64
	for _, ls := range live {
		want = append(want, ls.deadline)
	}
	slices.Sort(want)
	var got []int64
	for len(h) > 0 {
		got = append(got, h[0].deadline)
		h.remove(0)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
}
