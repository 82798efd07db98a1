package watch

import (
	"time"

	"go.uber.org/zap"
)

// Defaults for zero Options fields; the first four are etcd's.
const (
	DefaultProgressInterval = 10 * time.Minute
	DefaultMaxRequestBytes  = 1536 * 1024
	DefaultSyncInterval     = 100 * time.Millisecond
	DefaultSyncBatch        = 1000
	DefaultStreamBuffer     = 128
)

// Options tune a Hub. Zero values take the defaults above.
type Options struct {
	// ProgressInterval is how often watchers that asked for progress_notify
	// and received no events since the last tick get a progress response.
	ProgressInterval time.Duration
	// MaxRequestBytes is the fragmentation threshold for watchers that asked
	// for fragment: a response of at least this many bytes with two or more
	// events is split. etcd uses its max request bytes plus gRPC overhead.
	MaxRequestBytes int
	// SyncInterval is how often the hub retries catching up unsynced
	// watchers when nothing else woke it (new unsynced watchers and drained
	// streams wake it at once).
	SyncInterval time.Duration
	// SyncBatch is the largest number of revisions read per catch-up step.
	SyncBatch int
	// StreamBuffer is how many responses a stream holds for its consumer
	// before its watchers become unsynced.
	StreamBuffer int
	Logger       *zap.Logger

	// manual is for tests: no hub goroutine and no stream pumps; the test
	// drives catch-up and progress ticks and pops responses itself.
	manual bool
}

func (o Options) withDefaults() Options {
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SyncBatch <= 0 {
		o.SyncBatch = DefaultSyncBatch
	}
	if o.StreamBuffer <= 0 {
		o.StreamBuffer = DefaultStreamBuffer
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}
