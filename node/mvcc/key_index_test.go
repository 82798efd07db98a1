package mvcc

import (
	"reflect"
	"testing"
)

func TestRevisionWords(t *testing.T) {
	tests := []revision{
		{main: 1},
		{main: 2, sub: 3, tomb: true},
		{main: 1<<shortMainBits - 1, sub: 1<<shortSubBits - 1, tomb: true},
		{main: 1 << shortMainBits},        // main too big for the short form
		{main: 5, sub: 1 << shortSubBits}, // sub too big
		{main: maxMain, sub: 1<<62 + 7, tomb: true},
	}
	var ws []uint64
	for _, r := range tests {
		ws = appendWords(ws, r)
	}
	var fwd []revision
	for i := 0; i < len(ws); {
		var r revision
		r, i = decodeForward(ws, i)
		fwd = append(fwd, r)
	}
	if !reflect.DeepEqual(fwd, tests) {
		t.Fatalf("forward decode = %v, want %v", fwd, tests)
	}
	var bwd []revision
	for i := len(ws); i > 0; {
		var r revision
		r, i = decodeBackward(ws, i)
		bwd = append([]revision{r}, bwd...)
	}
	if !reflect.DeepEqual(bwd, tests) {
		t.Fatalf("backward decode = %v, want %v", bwd, tests)
	}
	for _, r := range tests {
		got, err := parseRevBytes(revBytes(r))
		if err != nil || got != r {
			t.Errorf("parseRevBytes(revBytes(%v)) = %v, %v", r, got, err)
		}
	}
	if _, err := parseRevBytes([]byte("short")); err == nil {
		t.Error("parseRevBytes accepted a malformed key")
	}
}

func rv(main, sub int64) revision   { return revision{main: main, sub: sub} }
func tomb(main, sub int64) revision { return revision{main: main, sub: sub, tomb: true} }
func mkKey(revs ...revision) *keyIndex {
	ki := &keyIndex{key: "foo"}
	for _, r := range revs {
		ki.add(r)
	}
	return ki
}

// etcd's documented example: put(1.0); put(2.0); tombstone(3.0); put(4.0);
// tombstone(5.0), and what compactions leave of it. Also with revisions that
// need the long word form.
func TestKeyIndexCompact(t *testing.T) {
	big := int64(1) << 50
	history := []revision{rv(1, 0), rv(2, 0), tomb(3, 0), rv(4, 0), tomb(5, 0)}
	tests := []struct {
		name string
		revs []revision
		at   int64
		want []revision // nil: key removed
	}{
		{"before all", history, 0, history},
		{"keeps newest", history, 1, history},
		{"drops older in generation", history, 2, []revision{rv(2, 0), tomb(3, 0), rv(4, 0), tomb(5, 0)}},
		{"tombstone at rev kept", history, 3, []revision{tomb(3, 0), rv(4, 0), tomb(5, 0)}},
		{"older generation gone", history, 4, []revision{rv(4, 0), tomb(5, 0)}},
		{"last tombstone at rev", history, 5, []revision{tomb(5, 0)}},
		{"all gone", history, 6, nil},
		{"live key keeps newest", []revision{rv(2, 0), rv(3, 1), rv(7, 0)}, 5, []revision{rv(3, 1), rv(7, 0)}},
		{"single live", []revision{rv(2, 0)}, 100, []revision{rv(2, 0)}},
		{"single tombstone older", []revision{tomb(2, 0)}, 3, nil},
		{"long forms", []revision{rv(big, 70000), rv(big+1, 0), tomb(big+2, 1<<20), rv(big+3, 1)}, big + 2,
			[]revision{tomb(big+2, 1<<20), rv(big+3, 1)}},
		{"long newest", []revision{rv(2, 0), rv(3, 70000)}, 2, []revision{rv(2, 0), rv(3, 70000)}},
		{"long newest kept alone", []revision{rv(2, 0), rv(3, 70000)}, 3, []revision{rv(3, 70000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ki := mkKey(tt.revs...)
			var scratch []revision
			gone := ki.compact(tt.at, &scratch)
			if gone != (tt.want == nil) {
				t.Fatalf("compact(%d) removed = %v, want %v", tt.at, gone, tt.want == nil)
			}
			if got := ki.appendRevisions(nil); tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("compact(%d) left %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestKeyIndexLookups(t *testing.T) {
	ki := mkKey(rv(2, 0), rv(4, 1), tomb(6, 0), rv(8, 70000))
	tests := []struct {
		at          int64
		wantAt      revision
		okAt        bool
		wantVisible bool
	}{
		{1, revision{}, false, false},
		{2, rv(2, 0), true, true},
		{5, rv(4, 1), true, true},
		{6, tomb(6, 0), true, false},
		{7, tomb(6, 0), true, false},
		{8, rv(8, 70000), true, true},
		{100, rv(8, 70000), true, true},
	}
	for _, tt := range tests {
		got, ok := ki.at(tt.at)
		if ok != tt.okAt || got != tt.wantAt {
			t.Errorf("at(%d) = %v, %v; want %v, %v", tt.at, got, ok, tt.wantAt, tt.okAt)
		}
		if _, ok := ki.visible(tt.at); ok != tt.wantVisible {
			t.Errorf("visible(%d) = %v, want %v", tt.at, ok, tt.wantVisible)
		}
	}
	for _, r := range []revision{rv(2, 0), rv(4, 1), tomb(6, 0), rv(8, 70000)} {
		if !ki.has(r.main, r.sub) {
			t.Errorf("has(%v) = false", r)
		}
	}
	for _, r := range []revision{rv(2, 1), rv(4, 0), rv(5, 0), rv(8, 0), rv(9, 0), rv(1, 0)} {
		if ki.has(r.main, r.sub) {
			t.Errorf("has(%v) = true", r)
		}
	}
}

func TestNewKeyIndexCopiesKey(t *testing.T) {
	for n := 0; n <= 200; n++ {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte('a' + (i+n)%26)
		}
		want := string(key)
		ki := newKeyIndex(key)
		clear(key) // the record must not alias the caller's bytes
		if ki.key != want {
			t.Fatalf("len %d: key %q, want %q", n, ki.key, want)
		}
		if ki.last != 0 || ki.more != nil {
			t.Fatalf("len %d: new record is not empty", n)
		}
	}
}

// TestNewKeyIndexAllocation: a record with its key costs one allocation of
// the size a record and a separate key would have taken together.
func TestNewKeyIndexAllocation(t *testing.T) {
	key := make([]byte, 40)
	if n := testing.AllocsPerRun(100, func() { _ = newKeyIndex(key) }); n != 1 {
		t.Fatalf("newKeyIndex of a 40-byte key: %v allocations, want 1", n)
	}
}
