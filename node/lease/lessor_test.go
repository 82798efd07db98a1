package lease

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func TestGrant(t *testing.T) {
	tests := []struct {
		name    string
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{"plain", 1, 10, 10, nil},
		{"raised to minimum", 2, 2, 5, nil},
		{"zero ttl raised", 3, 0, 5, nil},
		{"negative ttl raised", 4, -7, 5, nil},
		{"maximum", 5, MaxTTL, MaxTTL, nil},
		{"negative id", -6, 10, 10, nil},
		{"too large", 7, MaxTTL + 1, 0, ErrLeaseTTLTooLarge},
		{"id zero", 0, 10, 0, ErrLeaseNotFound},
		{"exists", 100, 10, 0, ErrLeaseExists},
	}
	e := newEnv(t, Config{MinTTL: 5})
	e.mustGrant(100, 30)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := e.grant(tt.id, tt.ttl)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			v, stored := e.get(tt.id)
			if tt.wantErr != nil {
				if ls != nil {
					t.Fatal("lease returned with error")
				}
				if tt.id != 100 && (stored || e.l.Lookup(tt.id) != nil) {
					t.Fatal("failed grant left a lease behind")
				}
				return
			}
			if ls.ID != tt.id || ls.TTL != tt.wantTTL {
				t.Fatalf("got ID %d TTL %d, want %d %d", ls.ID, ls.TTL, tt.id, tt.wantTTL)
			}
			if e.l.Lookup(tt.id) != ls {
				t.Fatal("Lookup does not return the granted lease")
			}
			rec, err := unmarshalRecord(idKey(tt.id), v)
			if !stored || err != nil || rec != (record{ID: tt.id, TTL: tt.wantTTL}) {
				t.Fatalf("stored %+v (present %v, err %v)", rec, stored, err)
			}
			if ls.Remaining() != time.Duration(math.MaxInt64) || !ls.Expiry().IsZero() {
				t.Fatal("a follower's lease must not expire")
			}
		})
	}
	if got := ids(e.l.Leases()); !slices.Equal(got, []int64{-6, 1, 2, 3, 4, 5, 100}) {
		t.Fatalf("Leases = %v", got)
	}
	checkInvariants(t, e.l)
}

func TestMinTTLDefaultsToOne(t *testing.T) {
	e := newEnv(t, Config{})
	if ls := e.mustGrant(1, 0); ls.TTL != 1 {
		t.Fatalf("TTL = %d, want 1", ls.TTL)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, Config{})
	e.mustGrant(1, 10)
	e.mustGrant(2, 10)
	for _, k := range []string{"a", "b"} {
		if err := e.l.Attach(1, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.l.Attach(2, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := e.revoke(1); err != nil {
		t.Fatal(err)
	}
	if e.l.Lookup(1) != nil {
		t.Fatal("revoked lease still found")
	}
	if _, ok := e.get(1); ok {
		t.Fatal("revoked lease still stored")
	}
	if e.l.GetLease([]byte("a")) != 0 || e.l.Keys(1) != nil {
		t.Fatal("revoked lease keeps keys")
	}
	if e.l.GetLease([]byte("c")) != 2 {
		t.Fatal("other lease lost its key")
	}
	if err := e.revoke(1); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := e.revoke(42); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("revoke missing: %v", err)
	}
	checkInvariants(t, e.l)
}

func TestAttachDetach(t *testing.T) {
	e := newEnv(t, Config{})
	e.mustGrant(1, 10)
	e.mustGrant(2, 10)
	type op struct {
		detach bool
		id     int64
		key    string
	}
	tests := []struct {
		name    string
		ops     []op
		wantErr error // of the last op
		keys1   []string
		keys2   []string
		owner   map[string]int64
	}{
		{"attach sorted", []op{{false, 1, "b"}, {false, 1, "a"}, {false, 1, "c"}}, nil,
			[]string{"a", "b", "c"}, nil, map[string]int64{"a": 1, "b": 1, "c": 1, "x": 0}},
		{"attach twice", []op{{false, 1, "a"}, {false, 1, "a"}}, nil,
			[]string{"a"}, nil, map[string]int64{"a": 1}},
		{"missing lease", []op{{false, 9, "a"}}, ErrLeaseNotFound,
			nil, nil, map[string]int64{"a": 0}},
		{"key moves", []op{{false, 1, "a"}, {false, 2, "a"}}, nil,
			nil, []string{"a"}, map[string]int64{"a": 2}},
		{"detach", []op{{false, 1, "a"}, {false, 1, "b"}, {true, 1, "a"}}, nil,
			[]string{"b"}, nil, map[string]int64{"a": 0, "b": 1}},
		{"detach from other lease is a no-op", []op{{false, 1, "a"}, {true, 2, "a"}}, nil,
			[]string{"a"}, nil, map[string]int64{"a": 1}},
		{"detach from missing lease", []op{{false, 1, "a"}, {true, 9, "a"}}, nil,
			[]string{"a"}, nil, map[string]int64{"a": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, id := range []int64{1, 2} {
				for _, k := range e.l.Keys(id) {
					e.l.Detach(id, k)
				}
			}
			var err error
			for _, o := range tt.ops {
				if o.detach {
					e.l.Detach(o.id, []byte(o.key))
					err = nil
				} else {
					err = e.l.Attach(o.id, []byte(o.key))
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for id, want := range map[int64][]string{1: tt.keys1, 2: tt.keys2} {
				var got []string
				for _, k := range e.l.Keys(id) {
					got = append(got, string(k))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("Keys(%d) = %q, want %q", id, got, want)
				}
				var viaLease []string
				for _, k := range e.l.Lookup(id).Keys() {
					viaLease = append(viaLease, string(k))
				}
				if !slices.Equal(viaLease, want) {
					t.Fatalf("Lease(%d).Keys() = %q, want %q", id, viaLease, want)
				}
			}
			for k, want := range tt.owner {
				if got := e.l.GetLease([]byte(k)); got != want {
					t.Fatalf("GetLease(%q) = %d, want %d", k, got, want)
				}
			}
			checkInvariants(t, e.l)
		})
	}
	if e.l.Keys(9) != nil {
		t.Fatal("Keys of a missing lease")
	}
}

func TestRestore(t *testing.T) {
	e := newEnv(t, Config{MinTTL: 2})
	e.mustGrant(3, 30)
	e.mustGrant(1, 10)
	e.mustGrant(2, 4)
	e.mustGrant(4, 40)
	e.mustGrant(-1, 3) // sorts last in the bucket (0xff... key)
	if err := e.revoke(4); err != nil {
		t.Fatal(err)
	}
	e.l.Promote(0)
	e.clock.Advance(7 * time.Second)

	// A higher minimum after restart raises stored TTLs, like etcd.
	e.reopen(Config{MinTTL: 5})
	got := e.l.Leases()
	if !slices.Equal(ids(got), []int64{-1, 1, 2, 3}) {
		t.Fatalf("restored %v", ids(got))
	}
	got = got[1:]
	for i, want := range []int64{10, 5, 30} {
		if got[i].TTL != want {
			t.Errorf("lease %d: TTL %d, want %d", got[i].ID, got[i].TTL, want)
		}
	}
	if e.l.IsPrimary() || got[0].Remaining() != time.Duration(math.MaxInt64) {
		t.Fatal("restored lessor must be a follower with undecided expiries")
	}
	checkInvariants(t, e.l)

	// The full TTL starts over on promotion: nothing was checkpointed.
	e.l.Promote(0)
	if r := e.l.Lookup(1).Remaining(); r != 10*time.Second {
		t.Fatalf("remaining after restore = %v, want full TTL 10s", r)
	}
}

func TestRestoreCheckpointedRemainingTTL(t *testing.T) {
	// etcd may have written a checkpointed remaining TTL; promotion uses it.
	e := newEnv(t, Config{})
	e.putRaw(1, record{ID: 1, TTL: 100, RemainingTTL: 7}.marshal())
	e.putRaw(2, record{ID: 2, TTL: 100}.marshal())
	e.reopen(Config{})
	e.l.Promote(time.Second)
	if r := e.l.Lookup(1).Remaining(); r != 8*time.Second {
		t.Fatalf("checkpointed lease: remaining %v, want 8s", r)
	}
	if r := e.l.Lookup(2).Remaining(); r != 101*time.Second {
		t.Fatalf("plain lease: remaining %v, want 101s", r)
	}
	// Renewal grants the full TTL and forgets the checkpoint.
	if _, err := e.l.Renew(1); err != nil {
		t.Fatal(err)
	}
	e.l.Demote()
	e.l.Promote(0)
	if r := e.l.Lookup(1).Remaining(); r != 100*time.Second {
		t.Fatalf("after renew and re-promotion: remaining %v, want 100s", r)
	}
	checkInvariants(t, e.l)
}

func TestRestoreCorrupt(t *testing.T) {
	e := newEnv(t, Config{})
	e.putRaw(1, []byte{0x08, 0x80})
	if _, err := newLessor(e.be, Config{}); err == nil {
		t.Fatal("corrupt record restored without error")
	}
}
