package backend

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// Keys of the meta bucket and their encodings, as etcd writes them.
var (
	metaConsistentIndex  = []byte("consistent_index")    // uint64, 8 bytes big-endian
	metaTerm             = []byte("term")                // uint64, 8 bytes big-endian (since 3.5)
	metaConfState        = []byte("confState")           // JSON of raftpb.ConfState (since 3.5)
	metaScheduledCompact = []byte("scheduledCompactRev") // revision bytes, see revBytes
	metaFinishedCompact  = []byte("finishedCompactRev")  // revision bytes, see revBytes
	metaStorageVersion   = []byte("storageVersion")      // "major.minor.0" (since 3.6)
)

// StorageVersion is the schema version written to meta/storageVersion:
// our files hold exactly etcd 3.6's schema (no bucket or key that 3.7 added),
// so both etcd 3.6 and 3.7 tools accept them without a migration.
const StorageVersion = "3.6.0"

var storageVersion = []byte(StorageVersion)

// readUint64 decodes an 8-byte big-endian value; a missing or short value
// (etcd's downgrade path may leave an empty one) reads as 0.
func readUint64(b *Backend, key []byte) uint64 {
	var n uint64
	b.Range(Meta, key, nil, 0, func(_, v []byte) bool {
		if len(v) >= 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return false
	})
	return n
}

func uint64Bytes(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

// ReadConsistentIndex returns the applied raft index and its term; 0 when
// missing (term is missing in files written before etcd 3.5).
func ReadConsistentIndex(b *Backend) (index, term uint64) {
	return readUint64(b, metaConsistentIndex), readUint64(b, metaTerm)
}

// SetConsistentIndex records the applied raft index and term. Like etcd it
// never writes index 0 (it would mean "not loaded yet") and writes the term
// only when it is known (> 0).
func SetConsistentIndex(tx *BatchTx, index, term uint64) {
	if index == 0 {
		return
	}
	tx.Put(Meta, metaConsistentIndex, uint64Bytes(index))
	if term > 0 {
		tx.Put(Meta, metaTerm, uint64Bytes(term))
	}
}

// ReadConfState returns the persisted raft ConfState, or nil if none was
// saved (files written before etcd 3.5).
func ReadConfState(b *Backend) (*raftpb.ConfState, error) {
	var (
		cs  *raftpb.ConfState
		err error
	)
	b.Range(Meta, metaConfState, nil, 0, func(_, v []byte) bool {
		cs = &raftpb.ConfState{}
		if uerr := json.Unmarshal(v, cs); uerr != nil {
			cs, err = nil, fmt.Errorf("backend: meta/confState is not a JSON ConfState (%q): %w", v, uerr)
		}
		return false
	})
	return cs, err
}

// SetConfState records cs as JSON, like etcd. Only the exported fields are
// encoded (voters, learners, voters_outgoing, learners_next, auto_leave).
func SetConfState(tx *BatchTx, cs *raftpb.ConfState) {
	v, err := json.Marshal(cs)
	if err != nil {
		// Slices of uint64 and a *bool always marshal.
		panic(fmt.Sprintf("backend: marshal ConfState: %v", err))
	}
	tx.Put(Meta, metaConfState, v)
}

// revBytes encodes a compaction revision like etcd's mvcc revision key with
// sub revision 0: 8 bytes big-endian main, '_', 8 bytes big-endian sub.
func revBytes(main int64) []byte {
	b := make([]byte, 17)
	binary.BigEndian.PutUint64(b, uint64(main))
	b[8] = '_'
	return b
}

// ReadCompactRevs returns the scheduled and finished compaction revisions; 0
// when missing.
func ReadCompactRevs(b *Backend) (scheduled, finished int64) {
	return int64(readUint64(b, metaScheduledCompact)), int64(readUint64(b, metaFinishedCompact))
}

// SetScheduledCompact records that a compaction at rev has been scheduled.
func SetScheduledCompact(tx *BatchTx, rev int64) {
	tx.Put(Meta, metaScheduledCompact, revBytes(rev))
}

// SetFinishedCompact records that the compaction at rev has finished.
func SetFinishedCompact(tx *BatchTx, rev int64) {
	tx.Put(Meta, metaFinishedCompact, revBytes(rev))
}

// SetStorageVersion writes meta/storageVersion as etcd 3.6+ does, so that
// etcdutl and etcd accept the file as a current schema.
func SetStorageVersion(tx *BatchTx) {
	tx.Put(Meta, metaStorageVersion, append([]byte(nil), storageVersion...))
}

// ReadStorageVersion is the schema version of the file, as etcd detects it:
// meta/storageVersion when present (3.6 and later), else "3.5.0" for a file
// that records a raft term (3.5's schema), else "" (unknown: an older file
// that has not been written by a raft snapshot yet).
func ReadStorageVersion(b *Backend) string {
	if v, ok := b.Get(Meta, metaStorageVersion); ok {
		return string(v)
	}
	if readUint64(b, metaTerm) > 0 {
		return "3.5.0"
	}
	return ""
}

// DeleteStorageVersion takes the file back to etcd 3.5's schema, which is
// 3.6's without meta/storageVersion (etcd's downgrade does exactly this).
func DeleteStorageVersion(tx *BatchTx) {
	tx.Delete(Meta, metaStorageVersion)
}
