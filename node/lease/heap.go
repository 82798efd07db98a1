package lease

// expiryHeap is a min-heap of leases ordered by deadline. It is written out
// rather than using container/heap so that pushes and fixes do not box
// values in interfaces. Each lease records its own index, so a lease can be
// fixed or removed in O(log n) without searching.
type expiryHeap []*Lease

// less orders by deadline, then ID, so that equal deadlines (leases handed
// out together and due for retry together) come out in a stable order.
func (h expiryHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	return a.deadline < b.deadline || (a.deadline == b.deadline && a.ID < b.ID)
}

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) push(ls *Lease) {
	ls.index = len(*h)
	*h = append(*h, ls)
	h.up(ls.index)
}

// remove takes the lease at index i out of the heap.
func (h *expiryHeap) remove(i int) {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
		if !old.down(i, n) {
			old.up(i)
		}
	}
	old[n].index = -1
	old[n] = nil // let the lease be collected
	*h = old[:n]
}

// fix restores heap order after the deadline at index i changed.
func (h expiryHeap) fix(i int) {
	if !h.down(i, len(h)) {
		h.up(i)
	}
}

// init orders an arbitrary slice in O(n).
func (h expiryHeap) init() {
	for i, ls := range h {
		ls.index = i
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i, len(h))
	}
}

func (h expiryHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts index i0 down within h[:n] and reports whether it moved.
func (h expiryHeap) down(i0, n int) bool {
	i := i0
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
