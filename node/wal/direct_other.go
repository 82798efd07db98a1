//go:build !linux

package wal

// directFlag is zero where the WAL does not use O_DIRECT.
const directFlag = 0
