package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// imageConfig is the part of the image configuration (the OCI/Docker image
// config, "application/vnd.docker.container.image.v1+json") that we set.
type imageConfig struct {
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Created      time.Time       `json:"created"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	User         string              `json:"User,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

// manifestEntry is one element of a docker-archive's manifest.json.
type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// writeArchive writes the docker-archive for spec to w and returns the image
// ID (the digest of its config).
func writeArchive(w io.Writer, spec imageSpec) (string, error) {
	layer, err := os.CreateTemp("", "mkimage-layer-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(layer.Name())
	defer layer.Close()

	h := sha256.New()
	if err := writeLayer(io.MultiWriter(layer, h), spec); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))
	size, err := layer.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return "", err
	}

	cfg := imageConfig{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      spec.Created,
		Config: containerConfig{
			User:       spec.User,
			Env:        spec.Env,
			Entrypoint: spec.Entrypoint,
			Cmd:        spec.Cmd,
			WorkingDir: spec.WorkingDir,
			Labels:     spec.Labels,
			StopSignal: spec.StopSignal,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []history{{Created: spec.Created, CreatedBy: "hack/image/mkimage"}},
	}
	for _, p := range spec.Expose {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if cfg.Config.ExposedPorts == nil {
			cfg.Config.ExposedPorts = map[string]struct{}{}
		}
		cfg.Config.ExposedPorts[p] = struct{}{}
	}
	for _, v := range spec.Volumes {
		if cfg.Config.Volumes == nil {
			cfg.Config.Volumes = map[string]struct{}{}
		}
		cfg.Config.Volumes[v] = struct{}{}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cfgJSON)
	id := hex.EncodeToString(sum[:])

	layerName := strings.TrimPrefix(diffID, "sha256:") + "/layer.tar"
	manifest, err := json.Marshal([]manifestEntry{{
		Config:   id + ".json",
		RepoTags: spec.Tags,
		Layers:   []string{layerName},
	}})
	if err != nil {
		return "", err
	}

	tw := tar.NewWriter(w)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: spec.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(&tar.Header{Name: path.Dir(layerName) + "/", Mode: 0o755, ModTime: spec.Created, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
		return "", err
	}
	if err := tw.WriteHeader(hdr(layerName, size)); err != nil {
		return "", err
	}
	if _, err := io.Copy(tw, layer); err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{id + ".json", cfgJSON}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(hdr(f.name, int64(len(f.data)))); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	return "sha256:" + id, tw.Close()
}

// writeLayer writes the image's file system as one tar layer: the base
// archive's entries, then the command line's entries sorted by path, with
// any missing parent directory created (0755, root), as `docker build` does
// for COPY.
func writeLayer(w io.Writer, spec imageSpec) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}

	if spec.BaseTar != "" {
		if err := copyBase(tw, spec.BaseTar, spec.Created, seen); err != nil {
			return fmt.Errorf("base %s: %w", spec.BaseTar, err)
		}
	}

	entries := append([]entry(nil), spec.Entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	explicit := map[string]bool{}
	for _, e := range entries {
		if explicit[e.Path] {
			return fmt.Errorf("%s is given twice", e.Path)
		}
		explicit[e.Path] = true
	}

	for _, e := range entries {
		if err := writeParents(tw, e.Path, spec.Created, seen, explicit); err != nil {
			return err
		}
		name := strings.TrimPrefix(e.Path, "/")
		h := &tar.Header{Name: name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: spec.Created, Format: tar.FormatPAX}
		switch e.Kind {
		case kindDir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case kindSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case kindFile:
			if err := writeFile(tw, h, e.Source); err != nil {
				return err
			}
		}
		seen[e.Path] = true
	}
	return tw.Close()
}

// writeParents writes the directories above p that no earlier entry made.
// A parent given explicitly (-dir) is left to its own entry, which sorts
// before p.
func writeParents(tw *tar.Writer, p string, mtime time.Time, seen, explicit map[string]bool) error {
	var missing []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if seen[d] || explicit[d] {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
		seen[d] = true
	}
	return nil
}

func writeFile(tw *tar.Writer, h *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if h.Mode < 0 {
		h.Mode = int64(st.Mode().Perm())
	}
	h.Typeflag, h.Size = tar.TypeReg, st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return err
	}
	if n != st.Size() {
		return fmt.Errorf("%s changed while being read", src)
	}
	return nil
}

// copyBase copies every entry of a tar archive, keeping ownership, modes and
// link targets but stamping one modification time so that the layer does
// not depend on when the base was made.
func copyBase(tw *tar.Writer, name string, mtime time.Time, seen map[string]bool) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		clean := path.Clean("/" + h.Name)
		if clean == "/" {
			continue // "./": the root has no entry of its own in a layer
		}
		h.Name = strings.TrimPrefix(clean, "/")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
		}
		h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		seen[clean] = true
	}
}
