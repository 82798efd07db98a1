package lease

import "errors"

// MaxTTL is the largest TTL, in seconds, a lease may be granted with. It is
// etcd's MaxLeaseTTL; larger requests fail with ErrLeaseTTLTooLarge.
const MaxTTL = 9000000000

// Errors returned by the Lessor. The API layer maps them to the matching
// rpctypes errors (ErrGRPCLeaseNotFound, ErrGRPCLeaseExist,
// ErrGRPCLeaseTTLTooLarge, ErrGRPCNotLeader/forwarding for ErrNotPrimary).
var (
	// ErrLeaseNotFound: no lease with that ID (or it expired and was revoked
	// while a Renew waited, or Grant was asked for ID 0).
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrLeaseExists: Grant of an ID that is already in use.
	ErrLeaseExists = errors.New("lease already exists")
	// ErrLeaseTTLTooLarge: Grant with a TTL above MaxTTL.
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
	// ErrNotPrimary: Renew on a member that is not the leader's lessor; the
	// caller forwards the request to the leader.
	ErrNotPrimary = errors.New("not a primary lessor")
)
