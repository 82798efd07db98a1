package auth

import "context"

// The user etcd treats as the administrator, and the role that makes any
// user one. Neither is created implicitly: AuthEnable requires a user named
// root holding the root role.
const (
	RootUser = "root"
	RootRole = "root"
)

// Info is who a request comes from: a user, and the auth revision at which
// its credentials were checked. Revision 0 means no credentials at all.
//
// A check made with an Info whose revision is older than the store's fails
// with ErrAuthOldRevision: users, roles or permissions changed since, so the
// client must authenticate again (client/v3 does so by itself).
type Info struct {
	User     string
	Revision uint64
}

// Credentials are what a request carries to say who it comes from, as the
// API layer found them.
type Credentials struct {
	// Token is the "token" (or, from the HTTP gateway, "authorization")
	// gRPC metadata; HasToken tells an empty one from none.
	Token    string
	HasToken bool
	// CommonName is the CN of the client certificate the connection was
	// verified with, when --client-cert-auth is on; HasCert tells an
	// empty CN from no certificate.
	CommonName string
	HasCert    bool
}

type rootKey struct{}

// WithRoot marks ctx as the member's own work (health checks, expired lease
// revocation, auto compaction), which runs as the root user the way etcd's
// does. Only code inside the member can set it: a client's context never
// carries it.
func WithRoot(ctx context.Context) context.Context {
	return context.WithValue(ctx, rootKey{}, true)
}

func isRoot(ctx context.Context) bool {
	v, _ := ctx.Value(rootKey{}).(bool)
	return v
}
