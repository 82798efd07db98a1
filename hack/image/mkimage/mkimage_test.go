package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEntries(t *testing.T) {
	tests := []struct {
		name    string
		parse   func(string) (entry, error)
		in      string
		want    entry
		wantErr string
	}{
		{"add keeps host mode", parseAdd, "bin/x:/usr/bin/x", entry{Kind: kindFile, Path: "/usr/bin/x", Source: "bin/x", Mode: -1}, ""},
		{"add with mode and owner", parseAdd, "a:/opt//a/:0600:1:2", entry{Kind: kindFile, Path: "/opt/a", Source: "a", Mode: 0o600, UID: 1, GID: 2}, ""},
		{"add relative destination", parseAdd, "a:opt/a", entry{}, "must be absolute"},
		{"add missing destination", parseAdd, "a", entry{}, "want SRC:DST"},
		{"add bad mode", parseAdd, "a:/a:rw", entry{}, "not octal"},
		{"add uid without gid", parseAdd, "a:/a:0644:1", entry{}, "MODE:UID:GID"},
		{"dir default", parseDir, "/var/lib/x", entry{Kind: kindDir, Path: "/var/lib/x", Mode: 0o755}, ""},
		{"dir sticky and owned", parseDir, "/tmp:1777:0:0", entry{Kind: kindDir, Path: "/tmp", Mode: 0o1777}, ""},
		{"dir root", parseDir, "/", entry{}, "names the root"},
		{"symlink", parseSymlink, "/usr/bin/etcd=ballast", entry{Kind: kindSymlink, Path: "/usr/bin/etcd", Target: "ballast", Mode: 0o777}, ""},
		{"symlink without target", parseSymlink, "/a=", entry{}, "want DST=TARGET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// readArchive unpacks a docker-archive into its manifest, config and the
// layer's headers and contents.
func readArchive(t *testing.T, data []byte) (manifestEntry, imageConfig, []byte, map[string]*tar.Header, map[string]string) {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	var manifest []manifestEntry
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v (%d entries)", err, len(manifest))
	}
	var cfg imageConfig
	cfgJSON := files[manifest[0].Config]
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	layer := files[manifest[0].Layers[0]]
	headers := map[string]*tar.Header{}
	contents := map[string]string{}
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(lr)
		headers[h.Name] = h
		contents[h.Name] = string(b)
	}
	return manifest[0], cfg, cfgJSON, headers, contents
}

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A base file system with a directory and a file, as tar writes them.
	base := filepath.Join(dir, "base.tar")
	var bb bytes.Buffer
	bw := tar.NewWriter(&bb)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6, Uid: 0},
	} {
		if err := bw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			bw.Write([]byte("debian"))
		}
	}
	bw.Close()
	if err := os.WriteFile(base, bb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	spec := imageSpec{
		Tags:    []string{"example:1"},
		BaseTar: base,
		Entries: []entry{
			{Kind: kindSymlink, Path: "/usr/local/bin/alias", Target: "app", Mode: 0o777},
			{Kind: kindFile, Path: "/usr/local/bin/app", Source: bin, Mode: -1},
			{Kind: kindDir, Path: "/var/lib/app", Mode: 0o750, UID: 65532, GID: 65532},
			{Kind: kindFile, Path: "/etc/app.conf", Source: bin, Mode: 0o600},
		},
		Entrypoint: []string{"/usr/local/bin/app"},
		User:       "65532",
		Env:        []string{"PATH=/usr/local/bin"},
		Expose:     []string{"2379", "53/udp"},
		StopSignal: "SIGRTMIN+3",
		Created:    defaultEpoch,
	}
	var out bytes.Buffer
	id, err := writeArchive(&out, spec)
	if err != nil {
		t.Fatal(err)
	}
	m, cfg, cfgJSON, headers, contents := readArchive(t, out.Bytes())

	sum := sha256.Sum256(cfgJSON)
	if want := "sha256:" + hex.EncodeToString(sum[:]); id != want {
		t.Errorf("image ID %s is not the config digest %s", id, want)
	}
	if !reflect.DeepEqual(m.RepoTags, []string{"example:1"}) {
		t.Errorf("RepoTags = %v", m.RepoTags)
	}
	// The diff ID must be the digest of the layer as stored, or docker load
	// and ctr import refuse the archive.
	layerSum := sha256.Sum256(func() []byte {
		tr := tar.NewReader(bytes.NewReader(out.Bytes()))
		for {
			h, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == m.Layers[0] {
				b, _ := io.ReadAll(tr)
				return b
			}
		}
	}())
	if got, want := cfg.RootFS.DiffIDs, []string{"sha256:" + hex.EncodeToString(layerSum[:])}; !reflect.DeepEqual(got, want) {
		t.Errorf("diff_ids = %v, want %v", got, want)
	}
	if cfg.Config.StopSignal != "SIGRTMIN+3" || cfg.Config.User != "65532" {
		t.Errorf("config = %+v", cfg.Config)
	}
	if _, ok := cfg.Config.ExposedPorts["2379/tcp"]; !ok {
		t.Errorf("a port without protocol should be tcp: %v", cfg.Config.ExposedPorts)
	}
	if _, ok := cfg.Config.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ExposedPorts = %v", cfg.Config.ExposedPorts)
	}

	for name, want := range map[string]struct {
		typ      byte
		mode     int64
		uid      int
		linkname string
	}{
		"etc/":                {tar.TypeDir, 0o755, 0, ""},
		"etc/os-release":      {tar.TypeReg, 0o644, 0, ""},
		"etc/app.conf":        {tar.TypeReg, 0o600, 0, ""},
		"usr/":                {tar.TypeDir, 0o755, 0, ""},
		"usr/local/":          {tar.TypeDir, 0o755, 0, ""},
		"usr/local/bin/":      {tar.TypeDir, 0o755, 0, ""},
		"usr/local/bin/app":   {tar.TypeReg, 0o755, 0, ""},
		"usr/local/bin/alias": {tar.TypeSymlink, 0o777, 0, "app"},
		"var/lib/app/":        {tar.TypeDir, 0o750, 65532, ""},
		"var/":                {tar.TypeDir, 0o755, 0, ""},
		"var/lib/":            {tar.TypeDir, 0o755, 0, ""},
	} {
		h, ok := headers[name]
		if !ok {
			t.Errorf("layer has no %s", name)
			continue
		}
		if h.Typeflag != want.typ || h.Mode != want.mode || h.Uid != want.uid || h.Linkname != want.linkname {
			t.Errorf("%s: type %c mode %o uid %d link %q; want %c %o %d %q", name, h.Typeflag, h.Mode, h.Uid, h.Linkname, want.typ, want.mode, want.uid, want.linkname)
		}
		if !h.ModTime.Equal(defaultEpoch) {
			t.Errorf("%s: mtime %v, want the fixed build time", name, h.ModTime)
		}
	}
	if _, ok := headers["./"]; ok {
		t.Error("the base's root entry was copied")
	}
	if len(headers) != 11 {
		t.Errorf("layer has %d entries, want 11 (no parent written twice)", len(headers))
	}
	if contents["usr/local/bin/app"] != "#!binary" || contents["etc/os-release"] != "debian" {
		t.Errorf("contents = %q", contents)
	}

	// The same inputs give the same image.
	var again bytes.Buffer
	id2, err := writeArchive(&again, spec)
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Errorf("second build differs: %s vs %s", id2, id)
	}
}

func TestWriteArchiveRejectsDuplicates(t *testing.T) {
	spec := imageSpec{
		Tags: []string{"x:1"},
		Entries: []entry{
			{Kind: kindDir, Path: "/a", Mode: 0o755},
			{Kind: kindSymlink, Path: "/a", Target: "b", Mode: 0o777},
		},
		Created: defaultEpoch,
	}
	if _, err := writeArchive(io.Discard, spec); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("error = %v, want a duplicate path error", err)
	}
}

func TestBuildTime(t *testing.T) {
	for in, want := range map[string]int64{"": defaultEpoch.Unix(), "junk": defaultEpoch.Unix(), "0": defaultEpoch.Unix(), "1700000000": 1700000000} {
		if got := buildTime(in).Unix(); got != want {
			t.Errorf("buildTime(%q) = %d, want %d", in, got, want)
		}
	}
}
