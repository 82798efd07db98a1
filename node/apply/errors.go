package apply

import (
	"errors"

	"github.com/ballastdb/ballast/node/mvcc"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// grpcError maps store errors to the gRPC errors etcd returns for them, so
// the API layer can pass every error from this package through unchanged.
// Errors it does not know stay as they are.
func grpcError(err error) error {
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	}
	return err
}
