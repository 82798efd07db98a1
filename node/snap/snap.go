// Package snap stores raft snapshot metadata files. The state itself lives
// in the bbolt db; a file here records which raft index and term (and
// ConfState) that state corresponds to, so that raft can restart from it.
//
// A snapshot is a file "<term:%016x>-<index:%016x>.snap" holding
//
//	[0:4] magic "bsn1"
//	[4:8] crc32c (Castagnoli) of the rest, uint32 little endian
//	[8:]  marshalled raftpb.Snapshot
//
// written to a temporary file, fsynced and renamed into place, so a crash
// leaves either the whole file or none of it.
package snap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/fileutil"
)

// ErrNoSnapshot is returned by LoadNewest when dir holds no usable snapshot.
var ErrNoSnapshot = errors.New("snap: no usable snapshot")

const (
	snapExt    = ".snap"
	tempSuffix = ".tmp"
	headerSize = 8
)

var (
	magic      = [4]byte{'b', 's', 'n', '1'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func fileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapExt)
}

func parseName(name string) (term, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, snapExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return term, index, err1 == nil && err2 == nil
}

// Save writes s durably to dir (created if missing). s must carry metadata
// with a non-zero index.
func Save(dir string, s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	if md.GetIndex() == 0 {
		return errors.New("snap: refusing to save a snapshot without an index")
	}
	body, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("snap: marshal: %w", err)
	}
	buf := make([]byte, headerSize, headerSize+len(body))
	copy(buf, magic[:])
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(body, castagnoli))
	buf = append(buf, body...)

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	name := fileName(md.GetTerm(), md.GetIndex())
	f, err := os.CreateTemp(dir, name+".*"+tempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snap: save %s: %w", name, err)
	}
	return fileutil.SyncDir(dir)
}

// LoadNewest returns the newest snapshot in dir that reads back intact,
// logging broken ones to the global zap logger (zap.L()). See
// LoadNewestWithLogger.
func LoadNewest(dir string) (*raftpb.Snapshot, error) {
	return LoadNewestWithLogger(dir, zap.L())
}

// LoadNewestWithLogger returns the newest snapshot in dir that reads back
// intact. Broken files are skipped with a warning, not deleted, so an
// operator can inspect them. It returns ErrNoSnapshot if there is none.
func LoadNewestWithLogger(dir string, lg *zap.Logger) (*raftpb.Snapshot, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	names, err := snapNames(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSnapshot
	}
	if err != nil {
		return nil, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		path := filepath.Join(dir, names[i])
		s, err := load(path)
		if err == nil {
			return s, nil
		}
		lg.Warn("skipping broken snapshot file; an older one will be used if intact. Remove or inspect the file",
			zap.String("file", path), zap.Error(err))
	}
	return nil, ErrNoSnapshot
}

// load reads one snapshot file and checks it against its name.
func load(path string) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < headerSize || !bytes.Equal(b[:4], magic[:]) {
		return nil, errors.New("not a snapshot file (bad header)")
	}
	body := b[headerSize:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, errors.New("checksum mismatch")
	}
	s := &raftpb.Snapshot{}
	if err := proto.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("undecodable: %w", err)
	}
	term, index, _ := parseName(filepath.Base(path))
	if md := s.GetMetadata(); md.GetTerm() != term || md.GetIndex() != index {
		return nil, fmt.Errorf("file name says term %d index %d, content says term %d index %d",
			term, index, md.GetTerm(), md.GetIndex())
	}
	return s, nil
}

// Purge deletes all but the newest keep snapshot files of dir, and any
// temporary files left by an interrupted Save.
func Purge(dir string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("snap: Purge must keep at least one snapshot, got %d", keep)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		// Save's temporary files are named "<final name>.<random>.tmp".
		if strings.Contains(de.Name(), snapExt+".") && strings.HasSuffix(de.Name(), tempSuffix) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	names, err := snapNames(dir)
	if err != nil {
		return err
	}
	for i := 0; i < len(names)-keep; i++ {
		if err := os.Remove(filepath.Join(dir, names[i])); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// snapNames lists the snapshot files of dir, oldest first. Raft terms and
// indexes only grow together, so ordering by (term, index) — which the
// fixed-width hex names give lexically — is ordering by index.
func snapNames(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if _, _, ok := parseName(de.Name()); ok && de.Type().IsRegular() {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
