// Command mkimage writes a single-layer container image as a docker-archive
// (the format of `docker save`, read by `docker load` and `ctr images
// import`) from files on this machine. It needs no registry, no base image
// and no Docker daemon, which is how `make image` and the kind node recipe
// (hack/kind) build images on a machine that cannot pull anything.
//
// The layer is reproducible: entries are sorted, owned as told (root by
// default) and stamped with one fixed time (SOURCE_DATE_EPOCH, or
// 2024-01-01), so the same inputs give the same image ID and a cache keyed
// by it stays valid.
//
// Usage:
//
//	mkimage -o ballast.tar -tag ballast:0.1.0 \
//	  -add bin/ballast:/usr/local/bin/ballast:0755 \
//	  -symlink /usr/local/bin/etcd=ballast \
//	  -dir /var/lib/ballast:0755:65532:65532 \
//	  -entrypoint '["/usr/local/bin/ballast"]' -cmd '["node"]' -user 65532:65532
//
// -base-tar adds the entries of an existing tar archive (a root file system)
// before the files given with -add, -dir and -symlink.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		out, baseTar, entrypoint, cmd, user, workdir, stopSignal   string
		tags, adds, dirs, symlinks, envs, exposes, volumes, labels listFlag
	)
	fs.StringVar(&out, "o", "", "output docker-archive path (required)")
	fs.StringVar(&baseTar, "base-tar", "", "tar archive whose entries start the layer")
	fs.Var(&tags, "tag", "repository:tag (repeatable, at least one)")
	fs.Var(&adds, "add", "SRC:DST[:MODE[:UID:GID]] copy a host file into the image (repeatable)")
	fs.Var(&dirs, "dir", "DST[:MODE[:UID:GID]] an empty directory (repeatable)")
	fs.Var(&symlinks, "symlink", "DST=TARGET a symbolic link (repeatable)")
	fs.StringVar(&entrypoint, "entrypoint", "", `entrypoint as a JSON array, e.g. '["/app"]'`)
	fs.StringVar(&cmd, "cmd", "", "command as a JSON array")
	fs.StringVar(&user, "user", "", "user[:group] the process runs as")
	fs.StringVar(&workdir, "workdir", "", "working directory")
	fs.StringVar(&stopSignal, "stop-signal", "", "signal that stops the container, e.g. SIGRTMIN+3")
	fs.Var(&envs, "env", "NAME=VALUE (repeatable)")
	fs.Var(&exposes, "expose", "PORT/PROTO (repeatable)")
	fs.Var(&volumes, "volume", "path declared as a volume (repeatable)")
	fs.Var(&labels, "label", "KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if out == "" || len(tags) == 0 {
		return fmt.Errorf("-o and at least one -tag are required")
	}

	spec := imageSpec{
		Tags:       tags,
		BaseTar:    baseTar,
		User:       user,
		WorkingDir: workdir,
		StopSignal: stopSignal,
		Env:        envs,
		Expose:     exposes,
		Volumes:    volumes,
		Created:    buildTime(os.Getenv("SOURCE_DATE_EPOCH")),
	}
	var err error
	if spec.Entrypoint, err = parseJSONArray("entrypoint", entrypoint); err != nil {
		return err
	}
	if spec.Cmd, err = parseJSONArray("cmd", cmd); err != nil {
		return err
	}
	if spec.Labels, err = parseKeyValues(labels); err != nil {
		return err
	}
	for _, a := range adds {
		e, err := parseAdd(a)
		if err != nil {
			return err
		}
		spec.Entries = append(spec.Entries, e)
	}
	for _, d := range dirs {
		e, err := parseDir(d)
		if err != nil {
			return err
		}
		spec.Entries = append(spec.Entries, e)
	}
	for _, s := range symlinks {
		e, err := parseSymlink(s)
		if err != nil {
			return err
		}
		spec.Entries = append(spec.Entries, e)
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	id, err := writeArchive(f, spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Printf("%s %s\n", id, strings.Join(tags, " "))
	return nil
}
