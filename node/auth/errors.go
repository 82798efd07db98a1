package auth

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcd has no rpctypes error for these: its gRPC layer sends them as
// codes.Unknown with the auth package's own message, and clients see exactly
// that text.
var (
	// errNoPasswordUser answers Authenticate for a user added with
	// --no-password, and a user add or password change whose hashed password
	// does not decode.
	errNoPasswordUser = status.Error(codes.Unknown, "auth: authentication failed, password was given for no password user")
	// errVerifyOnly answers Authenticate on a member whose JWT provider has
	// only a public key: it can check tokens but not sign them.
	errVerifyOnly = status.Error(codes.Unknown, "auth: token signing attempted with verify-only key")
)
