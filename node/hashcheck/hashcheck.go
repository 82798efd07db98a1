// Package hashcheck decides, from the hashes of the key-value store that
// members report, whether a member's data has diverged: etcd's corruption
// checks (server/etcdserver/corrupt.go), as pure functions. Gathering the
// hashes and raising the CORRUPT alarm is the server's job.
//
// Members apply the same log, so at the same revision, with the same
// compaction revision, healthy members hash their data identically (see
// mvcc.Store.HashKV and the compaction hashes). A hash is only comparable
// with another taken at the same compaction revision: a compaction changes
// what the hash covers.
package hashcheck

import "fmt"

// Hash is a member's hash of its key-value data up to Revision, taken
// when it had compacted at CompactRevision.
type Hash struct {
	Hash            uint32
	Revision        int64
	CompactRevision int64
}

// Peer is one other member's answer to "your hash at revision R".
type Peer struct {
	ID uint64
	// OK: the member answered; Hash and CurrentRevision are its answer
	// (CurrentRevision: its store's revision when it answered). Else Err
	// says why not.
	OK              bool
	Hash            Hash
	CurrentRevision int64
	Err             error
}

// Finding is one conclusion of a check.
type Finding struct {
	// Member is the member whose data looks wrong; 0 when the check cannot
	// tell which (the whole cluster is suspect).
	Member uint64
	// Corrupt: the data differ. Otherwise the finding is a note on a peer
	// that could not be compared.
	Corrupt bool
	Reason  string
}

// Initial is the start-up check of a member whose own hash is local
// (taken at its current revision) against its peers' hashes at the same
// revision: a peer at the same compaction revision with another hash
// means the data differ. Peers that did not answer, or compacted
// differently, cannot be compared; they are noted. The member that runs
// this check is the one that refuses to start, whichever copy is wrong.
func Initial(local Hash, peers []Peer) []Finding {
	var out []Finding
	for _, p := range peers {
		switch {
		case !p.OK:
			out = append(out, Finding{Member: p.ID, Reason: fmt.Sprintf("no hash from the peer: %v", p.Err)})
		case p.Hash.Hash == local.Hash:
		case p.Hash.CompactRevision != local.CompactRevision:
			out = append(out, Finding{Member: p.ID, Reason: fmt.Sprintf(
				"the peer compacted at revision %d, this member at %d; hashes not comparable",
				p.Hash.CompactRevision, local.CompactRevision)})
		default:
			out = append(out, Finding{Member: p.ID, Corrupt: true, Reason: fmt.Sprintf(
				"hash %d at revision %d differs from this member's %d", p.Hash.Hash, local.Revision, local.Hash)})
		}
	}
	return out
}

// Periodic is the leader's periodic check (etcd's PeriodicCheck). first
// is the leader's hash at its revision R; peers are the others' hashes at
// R; second is the leader's hash again, taken after it has applied
// everything committed when the peers had answered, and secondRev its
// revision then. Findings:
//   - the leader's own two hashes at the same revision and compaction
//     revision differ: its store changed under it (leader corrupt);
//   - a peer is ahead of the leader, in revision or compaction revision;
//   - a peer at the leader's first compaction revision hashes R otherwise.
//
// etcd raises the alarm for the first corrupt finding only.
func Periodic(leader uint64, first, second Hash, secondRev int64, peers []Peer) []Finding {
	var out []Finding
	if second.Hash != first.Hash && second.Revision == first.Revision && second.CompactRevision == first.CompactRevision {
		out = append(out, Finding{Member: leader, Corrupt: true, Reason: fmt.Sprintf(
			"the leader's hash at revision %d changed from %d to %d", first.Revision, first.Hash, second.Hash)})
	}
	for _, p := range peers {
		if !p.OK {
			continue
		}
		if p.CurrentRevision > secondRev {
			out = append(out, Finding{Member: p.ID, Corrupt: true, Reason: fmt.Sprintf(
				"the follower's revision %d is ahead of the leader's %d", p.CurrentRevision, secondRev)})
		}
		if p.Hash.CompactRevision > second.CompactRevision {
			out = append(out, Finding{Member: p.ID, Corrupt: true, Reason: fmt.Sprintf(
				"the follower's compaction revision %d is ahead of the leader's %d", p.Hash.CompactRevision, second.CompactRevision)})
		}
		if p.Hash.CompactRevision == first.CompactRevision && p.Hash.Hash != first.Hash {
			out = append(out, Finding{Member: p.ID, Corrupt: true, Reason: fmt.Sprintf(
				"at compaction revision %d the follower's hash %d differs from the leader's %d",
				first.CompactRevision, p.Hash.Hash, first.Hash)})
		}
	}
	return out
}

// Compaction compares the leader's hash of one compaction with the peers'
// hashes of the same compaction (etcd's CompactHashCheck). Peers that did
// not answer, or whose hash is of another compaction, are skipped. When
// the compared members disagree, the majority of all members (leader
// included) is taken as right and every other member is found corrupt;
// with no majority, nobody can be blamed: one finding with Member 0.
//
// done is false only when every compared member agreed but some were
// skipped: the caller should then look at its next older compaction.
func Compaction(leader uint64, h Hash, peers []Peer) (findings []Finding, done bool) {
	byHash := map[uint32][]uint64{h.Hash: {leader}}
	order := []uint32{h.Hash} // for a stable report
	compared := 0
	for _, p := range peers {
		switch {
		case !p.OK:
			findings = append(findings, Finding{Member: p.ID, Reason: fmt.Sprintf("skipped: no hash from the peer: %v", p.Err)})
			continue
		case p.Hash.CompactRevision != h.CompactRevision:
			findings = append(findings, Finding{Member: p.ID, Reason: fmt.Sprintf(
				"skipped: the peer's hash is of compaction revision %d, the leader's of %d", p.Hash.CompactRevision, h.CompactRevision)})
			continue
		}
		compared++
		if _, ok := byHash[p.Hash.Hash]; !ok {
			order = append(order, p.Hash.Hash)
		}
		byHash[p.Hash.Hash] = append(byHash[p.Hash.Hash], p.ID)
	}
	if len(byHash) == 1 {
		return findings, compared == len(peers)
	}
	quorum := (len(peers)+1)/2 + 1
	var majority uint32
	found := false
	for _, hv := range order {
		if len(byHash[hv]) >= quorum {
			majority, found = hv, true
			break
		}
	}
	if !found {
		return append(findings, Finding{Corrupt: true, Reason: fmt.Sprintf(
			"the hashes of the compaction at revision %d differ and no majority agrees on one; cannot tell which members are corrupt",
			h.Revision)}), true
	}
	for _, hv := range order {
		if hv == majority {
			continue
		}
		for _, id := range byHash[hv] {
			findings = append(findings, Finding{Member: id, Corrupt: true, Reason: fmt.Sprintf(
				"the hash of the compaction at revision %d is %d, the majority's %d", h.Revision, hv, majority)})
		}
	}
	return findings, true
}
