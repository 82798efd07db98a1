// Package wal is the write-ahead log of a member: the durable home of raft's
// entries, HardState and snapshot markers. A Save that returned with sync
// true survives kill -9 and power loss; everything else about the format
// serves that promise or startup/append latency.
//
// # Layout
//
// A WAL is a directory of segment files named
// "<seq:%016x>-<firstIndex:%016x>.wal". seq counts up by one per segment;
// firstIndex is a bound kept by the writer: every live entry stored in an
// earlier segment has an index below it (see ReleaseTo). Segments are
// preallocated with zeros (SegmentSize, default 64 MiB) so that appends and
// fdatasync never change the file size; the end of valid data is the first
// all-zero record header. A LOCK file holds an exclusive flock while the WAL
// is open.
//
// Records are appended with O_DIRECT writes where the filesystem supports
// them (see directWriter), through the page cache otherwise; either way a
// synced Save ends with one fdatasync.
//
// # Records
//
// Every record starts at an 8-byte aligned offset:
//
//	[0:4]   data length n, uint32 little endian
//	[4:8]   crc32c (Castagnoli) over the type byte followed by the data
//	[8]     record type
//	[9:12]  zero
//	[12:16] crc32c over bytes [0:12] of this header
//	[16:16+n] data, then zero padding up to a multiple of 8
//
// CRCs are not chained: each record verifies on its own. That is what lets
// recovery decide whether bad bytes are a torn tail (no valid record follows)
// or corruption in the middle of the log (a valid record follows), and the
// header CRC makes that resynchronising scan cheap. Stale records cannot
// masquerade as new ones because segment files are never reused and a
// repaired tail is zeroed to the end of the file.
//
// # Recovery
//
// ReadAll replays all segments. What follows the last valid record of a
// segment decides the outcome:
//
//   - zeros only: the normal end of data;
//   - invalid bytes with no valid record after them, in the newest segment:
//     a write cut short by a crash, never acknowledged. It is zeroed and a
//     warning names the file, offset and byte count;
//   - an invalid record followed by a valid one, or invalid bytes in any
//     older segment (those were fsynced before the next segment existed):
//     damage to acknowledged data. ReadAll returns *ErrCorrupt and the
//     member must not start.
//
// A damaged final record is indistinguishable from a torn write and is cut.
//
// Every segment starts with a segment header record (seq, firstIndex),
// followed by the metadata, the newest snapshot marker and the current
// HardState, so that older segments can be deleted without losing them.
package wal
