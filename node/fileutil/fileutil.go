// Package fileutil holds the few file-system steps durability depends on.
package fileutil

import "os"

// SyncDir fsyncs a directory, making the creation, removal or renaming of
// the entries in it durable. Renaming a fully written and synced temporary
// file over its final name is atomic only once the directory is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
