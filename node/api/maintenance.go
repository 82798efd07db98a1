package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// snapshotChunk is the blob size of one snapshot message, as etcd: a
// multiple of the OS page size, small enough to keep memory flat.
const snapshotChunk = 32 * 1024

type maintenanceService struct {
	etcdserverpb.UnimplementedMaintenanceServer
	s  Server
	lg *zap.Logger
}

func (m *maintenanceService) Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error) {
	resp, err := m.s.Alarm(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

func (m *maintenanceService) Status(ctx context.Context, _ *etcdserverpb.StatusRequest) (*etcdserverpb.StatusResponse, error) {
	resp, err := m.s.Status(ctx)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

func (m *maintenanceService) Defragment(ctx context.Context, _ *etcdserverpb.DefragmentRequest) (*etcdserverpb.DefragmentResponse, error) {
	m.lg.Info("starting defragment")
	if err := m.s.Defragment(ctx); err != nil {
		m.lg.Warn("failed to defragment", zap.Error(err))
		return nil, err
	}
	m.lg.Info("finished defragment")
	// etcd answers a defragmentation with an empty response, no header.
	return &etcdserverpb.DefragmentResponse{}, nil
}

func (m *maintenanceService) Hash(ctx context.Context, _ *etcdserverpb.HashRequest) (*etcdserverpb.HashResponse, error) {
	resp, err := m.s.Hash(ctx)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

func (m *maintenanceService) HashKV(ctx context.Context, r *etcdserverpb.HashKVRequest) (*etcdserverpb.HashKVResponse, error) {
	resp, err := m.s.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

// MoveLeader is only served by the leader, as in etcd (the Server checks,
// after the caller's permission).
func (m *maintenanceService) MoveLeader(ctx context.Context, r *etcdserverpb.MoveLeaderRequest) (*etcdserverpb.MoveLeaderResponse, error) {
	resp, err := m.s.MoveLeader(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

func (m *maintenanceService) Downgrade(ctx context.Context, r *etcdserverpb.DowngradeRequest) (*etcdserverpb.DowngradeResponse, error) {
	resp, err := m.s.Downgrade(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(m.s, resp.Header)
	return resp, nil
}

// Snapshot streams the database in snapshotChunk pieces, counting down
// RemainingBytes, then one more message whose blob is the sha256 of the
// whole database. etcdctl requires that trailer (it checks the saved size
// is 32 bytes past a multiple of 512) and etcdutl verifies it on restore.
// The database streams through a pipe, never whole in memory.
func (m *maintenanceService) Snapshot(_ *etcdserverpb.SnapshotRequest, srv etcdserverpb.Maintenance_SnapshotServer) error {
	ctx := srv.Context()
	snap, err := m.s.Snapshot(ctx)
	if err != nil {
		return err
	}
	var storageVersion string
	if st, err := m.s.Status(ctx); err == nil {
		storageVersion = st.StorageVersion
	}

	pr, pw := io.Pipe()
	// Closing the reader on return unblocks WriteTo if the client went away.
	defer pr.Close()
	go func() {
		_, err := snap.WriteTo(pw)
		if cerr := snap.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()

	total := snap.Size()
	start := time.Now()
	m.lg.Info("sending database snapshot to client", zap.Int64("total-bytes", total), zap.String("storage-version", storageVersion))
	h := sha256.New()
	for sent := int64(0); sent < total; {
		// A fresh buffer per message: gRPC may use a sent message after
		// Send returns (stats handlers), so it must not be overwritten.
		buf := make([]byte, min(snapshotChunk, total-sent))
		n, err := io.ReadFull(pr, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("snapshot ended after %d of %d bytes", sent+int64(n), total)
			}
			m.lg.Warn("failed to read database snapshot; aborting the transfer", zap.Error(err))
			return status.Error(codes.Internal, "ballast: "+err.Error())
		}
		sent += int64(n)
		h.Write(buf)
		if err := srv.Send(&etcdserverpb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf, Version: storageVersion}); err != nil {
			return err
		}
	}
	if err := srv.Send(&etcdserverpb.SnapshotResponse{Blob: h.Sum(nil), Version: storageVersion}); err != nil {
		return err
	}
	m.lg.Info("sent database snapshot and its sha256 checksum to client", zap.Int64("total-bytes", total), zap.Duration("took", time.Since(start)))
	return nil
}
