package compat

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestSameHistory writes the same history to etcd and Ballast and compares
// what clients read back (HashKV of the same history included: it must be
// equal if Ballast hashes the key space the way etcd does), then the bbolt
// contents of a snapshot of each, bucket by bucket.
func TestSameHistory(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 2*time.Minute)
	se, sb := newServer(t, etcd, ""), newServer(t, ballast, "")
	startServers(t, se, sb)
	envs := []*env{newEnv(t, se), newEnv(t, sb)}
	var dumps, layouts [2]string
	for i, e := range envs {
		leases, err := populate(ctx, e.c)
		if err != nil {
			t.Fatalf("%s: %v", e.srv.kind, err)
		}
		for _, l := range leases {
			e.addLease(int64(l))
		}
		dumps[i] = e.normalize(dumpState(ctx, e.c, e.srv.client))
		snap := filepath.Join(e.tmp, "snap.db")
		saveSnapshot(t, e.srv, snap)
		l, err := dumpBolt(snap)
		if err != nil {
			t.Fatalf("%s: %v", e.srv.kind, err)
		}
		layouts[i] = normLayout(e.normalize(l))
	}
	t.Run("client-view", func(t *testing.T) {
		if dumps[0] != dumps[1] {
			t.Errorf("the same history reads differently:\n%s", unifiedDiff("etcd", "ballast", dumps[0], dumps[1]))
		}
	})
	t.Run("hashkv", func(t *testing.T) {
		he, hb := hashLine(dumps[0]), hashLine(dumps[1])
		if he != hb {
			t.Errorf("HashKV of the same history differs:\n  etcd:    %s\n  ballast: %s", he, hb)
		} else {
			t.Logf("HashKV equal: %s", he)
		}
	})
	t.Run("bbolt-layout", func(t *testing.T) {
		if layouts[0] != layouts[1] {
			t.Errorf("snapshot bbolt contents differ:\n%s", unifiedDiff("etcd", "ballast", layouts[0], layouts[1]))
		}
	})
	if dir := lookupTranscripts(); dir != "" {
		writeTranscript(dir, t.Name()+"_etcd_layout", layouts[0])
		writeTranscript(dir, t.Name()+"_ballast_layout", layouts[1])
		writeTranscript(dir, t.Name()+"_etcd_state", dumps[0])
		writeTranscript(dir, t.Name()+"_ballast_state", dumps[1])
	}
}

func hashLine(dump string) string {
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "hashkv") {
			return l
		}
	}
	return "(none)"
}

// Values in the layout that differ between any two clusters: the raft
// index and term (endpoint status already compares the index). Everything
// else is compared.
var layoutRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?m)^(  "consistent_index" = )\d+$`), `$1<raft-index>`},
	{regexp.MustCompile(`(?m)^(  "term" = )\d+$`), `$1<term>`},
	{versionRe, `<api-version>`},
}

func normLayout(s string) string {
	for _, r := range layoutRules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// dumpBolt prints every bucket of an etcd backend file, decoding the
// formats etcd uses: revision keys and KeyValue values in "key", lease IDs
// and Lease messages in "lease", User and Role messages in "authUsers" and
// "authRoles", integers and JSON in "meta", "members", "cluster".
func dumpBolt(path string) (string, error) {
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var b strings.Builder
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
			fmt.Fprintf(&b, "bucket %q (%d keys)\n", name, bk.Stats().KeyN)
			return bk.ForEach(func(k, v []byte) error {
				switch string(name) {
				case "key":
					fmt.Fprintf(&b, "  %s = %s\n", fmtRevKey(k), protoText(v))
				case "lease":
					fmt.Fprintf(&b, "  %s = %s\n", fmtValue(k), protoText(v))
				case "authUsers", "authRoles":
					fmt.Fprintf(&b, "  %q = %s\n", k, protoText(v))
				default:
					fmt.Fprintf(&b, "  %q = %s\n", k, fmtValue(v))
				}
				return nil
			})
		})
	})
	return b.String(), err
}

// fmtRevKey decodes main(8) '_' sub(8) ['t'].
func fmtRevKey(k []byte) string {
	if (len(k) == 17 || len(k) == 18) && k[8] == '_' {
		s := fmt.Sprintf("rev %d.%d", binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[9:17]))
		if len(k) == 18 {
			s += fmt.Sprintf(" mark %q", k[17:])
		}
		return s
	}
	return "raw " + hex.EncodeToString(k)
}

func fmtValue(v []byte) string {
	switch {
	case len(v) == 8:
		return fmt.Sprintf("%d", binary.BigEndian.Uint64(v))
	case len(v) == 17 && v[8] == '_':
		return fmtRevKey(v)
	case isPrintable(v):
		return fmt.Sprintf("%q", v)
	default:
		return "hex " + hex.EncodeToString(v)
	}
}

func isPrintable(v []byte) bool {
	return bytes.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// protoText decodes a protobuf message without its schema: field numbers
// with varints as numbers and bytes as (truncated) quoted strings.
func protoText(v []byte) string {
	var parts []string
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return "undecodable " + hex.EncodeToString(v)
		}
		v = v[n:]
		switch typ {
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return "undecodable"
			}
			parts = append(parts, fmt.Sprintf("%d:%d", num, int64(x)))
			v = v[n:]
		case protowire.BytesType:
			x, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return "undecodable"
			}
			s := fmt.Sprintf("%q", x)
			if len(x) > 32 {
				s = fmt.Sprintf("%q...(%d bytes)", x[:16], len(x))
			}
			parts = append(parts, fmt.Sprintf("%d:%s", num, s))
			v = v[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return "undecodable"
			}
			parts = append(parts, fmt.Sprintf("%d:(type %d)", num, typ))
			v = v[n:]
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}
