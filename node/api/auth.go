package api

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// authService serves the Auth service from the Server's Authenticator,
// completing response headers; who may call what is the Server's business.
type authService struct {
	etcdserverpb.UnimplementedAuthServer
	s Server
}

// headered is every Auth response: a message with a header field.
type headered interface {
	proto.Message
	GetHeader() *etcdserverpb.ResponseHeader
}

// call runs one Auth method and fills its response's header.
func call[Req any, Resp headered](ctx context.Context, s Server, r Req, f func(context.Context, Req) (Resp, error)) (Resp, error) {
	resp, err := f(ctx, r)
	if err != nil {
		var zero Resp
		return zero, err
	}
	m := resp.ProtoReflect()
	m.Set(m.Descriptor().Fields().ByName("header"), protoreflect.ValueOfMessage(fillHeader(s, resp.GetHeader()).ProtoReflect()))
	return resp, nil
}

func (a *authService) AuthEnable(ctx context.Context, r *etcdserverpb.AuthEnableRequest) (*etcdserverpb.AuthEnableResponse, error) {
	return call(ctx, a.s, r, a.s.AuthEnable)
}

func (a *authService) AuthDisable(ctx context.Context, r *etcdserverpb.AuthDisableRequest) (*etcdserverpb.AuthDisableResponse, error) {
	return call(ctx, a.s, r, a.s.AuthDisable)
}

func (a *authService) AuthStatus(ctx context.Context, r *etcdserverpb.AuthStatusRequest) (*etcdserverpb.AuthStatusResponse, error) {
	return call(ctx, a.s, r, a.s.AuthStatus)
}

func (a *authService) Authenticate(ctx context.Context, r *etcdserverpb.AuthenticateRequest) (*etcdserverpb.AuthenticateResponse, error) {
	return call(ctx, a.s, r, a.s.Authenticate)
}

func (a *authService) UserAdd(ctx context.Context, r *etcdserverpb.AuthUserAddRequest) (*etcdserverpb.AuthUserAddResponse, error) {
	return call(ctx, a.s, r, a.s.UserAdd)
}

func (a *authService) UserGet(ctx context.Context, r *etcdserverpb.AuthUserGetRequest) (*etcdserverpb.AuthUserGetResponse, error) {
	return call(ctx, a.s, r, a.s.UserGet)
}

func (a *authService) UserList(ctx context.Context, r *etcdserverpb.AuthUserListRequest) (*etcdserverpb.AuthUserListResponse, error) {
	return call(ctx, a.s, r, a.s.UserList)
}

func (a *authService) UserDelete(ctx context.Context, r *etcdserverpb.AuthUserDeleteRequest) (*etcdserverpb.AuthUserDeleteResponse, error) {
	return call(ctx, a.s, r, a.s.UserDelete)
}

func (a *authService) UserChangePassword(ctx context.Context, r *etcdserverpb.AuthUserChangePasswordRequest) (*etcdserverpb.AuthUserChangePasswordResponse, error) {
	return call(ctx, a.s, r, a.s.UserChangePassword)
}

func (a *authService) UserGrantRole(ctx context.Context, r *etcdserverpb.AuthUserGrantRoleRequest) (*etcdserverpb.AuthUserGrantRoleResponse, error) {
	return call(ctx, a.s, r, a.s.UserGrantRole)
}

func (a *authService) UserRevokeRole(ctx context.Context, r *etcdserverpb.AuthUserRevokeRoleRequest) (*etcdserverpb.AuthUserRevokeRoleResponse, error) {
	return call(ctx, a.s, r, a.s.UserRevokeRole)
}

func (a *authService) RoleAdd(ctx context.Context, r *etcdserverpb.AuthRoleAddRequest) (*etcdserverpb.AuthRoleAddResponse, error) {
	return call(ctx, a.s, r, a.s.RoleAdd)
}

func (a *authService) RoleGet(ctx context.Context, r *etcdserverpb.AuthRoleGetRequest) (*etcdserverpb.AuthRoleGetResponse, error) {
	return call(ctx, a.s, r, a.s.RoleGet)
}

func (a *authService) RoleList(ctx context.Context, r *etcdserverpb.AuthRoleListRequest) (*etcdserverpb.AuthRoleListResponse, error) {
	return call(ctx, a.s, r, a.s.RoleList)
}

func (a *authService) RoleDelete(ctx context.Context, r *etcdserverpb.AuthRoleDeleteRequest) (*etcdserverpb.AuthRoleDeleteResponse, error) {
	return call(ctx, a.s, r, a.s.RoleDelete)
}

func (a *authService) RoleGrantPermission(ctx context.Context, r *etcdserverpb.AuthRoleGrantPermissionRequest) (*etcdserverpb.AuthRoleGrantPermissionResponse, error) {
	return call(ctx, a.s, r, a.s.RoleGrantPermission)
}

func (a *authService) RoleRevokePermission(ctx context.Context, r *etcdserverpb.AuthRoleRevokePermissionRequest) (*etcdserverpb.AuthRoleRevokePermissionResponse, error) {
	return call(ctx, a.s, r, a.s.RoleRevokePermission)
}
