package main

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// entryKind says what an entry of the layer is.
type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindSymlink
)

// entry is one path of the layer given on the command line.
type entry struct {
	Kind     entryKind
	Path     string // absolute path in the image, cleaned
	Source   string // host file, for kindFile
	Target   string // link target, for kindSymlink
	Mode     int64
	UID, GID int
}

// imageSpec is everything the archive is built from.
type imageSpec struct {
	Tags       []string
	BaseTar    string
	Entries    []entry
	Entrypoint []string
	Cmd        []string
	User       string
	WorkingDir string
	StopSignal string
	Env        []string
	Expose     []string
	Volumes    []string
	Labels     map[string]string
	Created    time.Time
}

// defaultEpoch stamps layers and configs when SOURCE_DATE_EPOCH is unset.
var defaultEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func buildTime(sourceDateEpoch string) time.Time {
	if sec, err := strconv.ParseInt(sourceDateEpoch, 10, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0).UTC()
	}
	return defaultEpoch
}

func parseJSONArray(name, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("-%s must be a JSON array of strings: %v", name, err)
	}
	return out, nil
}

func parseKeyValues(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// imagePath checks and cleans a path inside the image.
func imagePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("image path %q must be absolute", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("image path %q names the root", p)
	}
	return c, nil
}

// parseOwnership reads the optional ":MODE[:UID:GID]" fields.
func parseOwnership(spec string, fields []string, defMode int64) (mode int64, uid, gid int, err error) {
	mode = defMode
	if len(fields) >= 1 && fields[0] != "" {
		if mode, err = strconv.ParseInt(fields[0], 8, 32); err != nil {
			return 0, 0, 0, fmt.Errorf("%q: mode %q is not octal", spec, fields[0])
		}
	}
	switch len(fields) {
	case 0, 1:
	case 3:
		if uid, err = strconv.Atoi(fields[1]); err != nil {
			return 0, 0, 0, fmt.Errorf("%q: uid %q is not a number", spec, fields[1])
		}
		if gid, err = strconv.Atoi(fields[2]); err != nil {
			return 0, 0, 0, fmt.Errorf("%q: gid %q is not a number", spec, fields[2])
		}
	default:
		return 0, 0, 0, fmt.Errorf("%q: want MODE or MODE:UID:GID after the path", spec)
	}
	return mode, uid, gid, nil
}

// parseAdd reads SRC:DST[:MODE[:UID:GID]].
func parseAdd(spec string) (entry, error) {
	f := strings.Split(spec, ":")
	if len(f) < 2 || f[0] == "" {
		return entry{}, fmt.Errorf("-add %q: want SRC:DST[:MODE[:UID:GID]]", spec)
	}
	p, err := imagePath(f[1])
	if err != nil {
		return entry{}, fmt.Errorf("-add %q: %v", spec, err)
	}
	// Mode -1 keeps the host file's permission bits.
	mode, uid, gid, err := parseOwnership(spec, f[2:], -1)
	if err != nil {
		return entry{}, err
	}
	return entry{Kind: kindFile, Path: p, Source: f[0], Mode: mode, UID: uid, GID: gid}, nil
}

// parseDir reads DST[:MODE[:UID:GID]].
func parseDir(spec string) (entry, error) {
	f := strings.Split(spec, ":")
	p, err := imagePath(f[0])
	if err != nil {
		return entry{}, fmt.Errorf("-dir %q: %v", spec, err)
	}
	mode, uid, gid, err := parseOwnership(spec, f[1:], 0o755)
	if err != nil {
		return entry{}, err
	}
	return entry{Kind: kindDir, Path: p, Mode: mode, UID: uid, GID: gid}, nil
}

// parseSymlink reads DST=TARGET.
func parseSymlink(spec string) (entry, error) {
	dst, target, ok := strings.Cut(spec, "=")
	if !ok || target == "" {
		return entry{}, fmt.Errorf("-symlink %q: want DST=TARGET", spec)
	}
	p, err := imagePath(dst)
	if err != nil {
		return entry{}, fmt.Errorf("-symlink %q: %v", spec, err)
	}
	return entry{Kind: kindSymlink, Path: p, Target: target, Mode: 0o777}, nil
}
