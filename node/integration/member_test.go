package integration

import (
	"regexp"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestEtcdctlMemberSingle drives the membership API of a lone member with
// etcdctl: a learner can be added and removed; the errors are etcd's.
func TestEtcdctlMemberSingle(t *testing.T) {
	m := startMember(t)
	learnerURL := "http://127.0.0.1:1" // never started
	out := m.mustEtcdctl("member", "add", "m2", "--learner", "--peer-urls="+learnerURL)
	// etcdctl prints IDs with %16x: a shorter ID is padded with spaces.
	re := regexp.MustCompile(`^Member +([0-9a-f]+) added as learner to cluster +([0-9a-f]+)\n\n` +
		`ETCD_NAME="m2"\n` +
		`ETCD_INITIAL_CLUSTER="(m1=` + regexp.QuoteMeta(m.peer) + `,m2=` + regexp.QuoteMeta(learnerURL) + `|m2=` + regexp.QuoteMeta(learnerURL) + `,m1=` + regexp.QuoteMeta(m.peer) + `)"\n` +
		`ETCD_INITIAL_ADVERTISE_PEER_URLS="` + regexp.QuoteMeta(learnerURL) + `"\n` +
		`ETCD_INITIAL_CLUSTER_STATE="existing"\n$`)
	sm := re.FindStringSubmatch(out)
	if sm == nil {
		t.Fatalf("member add --learner printed:\n%s", out)
	}
	learnerID := sm[1]
	list := m.mustEtcdctl("member", "list")
	if !regexp.MustCompile(learnerID + `, unstarted, , ` + regexp.QuoteMeta(learnerURL) + `, , true\n`).MatchString(list) {
		t.Fatalf("member list does not show the unstarted learner:\n%s", list)
	}
	runSteps(t, m, []step{
		{args: []string{"member", "add", "m3", "--learner", "--peer-urls=http://127.0.0.1:2"}, wantErr: "etcdserver: too many learner members in cluster"},
		{args: []string{"member", "add", "m3", "--peer-urls=" + learnerURL}, wantErr: "etcdserver: Peer URLs already exists"},
		{args: []string{"member", "promote", learnerID}, wantErr: "etcdserver: can only promote a learner member which is in sync with leader"},
		{args: []string{"member", "remove", "1234"}, wantErr: "etcdserver: member not found"},
		{args: []string{"member", "update", "1234", "--peer-urls=http://127.0.0.1:3"}, wantErr: "etcdserver: member not found"},
		{args: []string{"member", "remove", learnerID}, wantRe: `^Member +` + learnerID + ` removed from cluster +[0-9a-f]+\n$`},
		// A second voter may join a lone member (etcd's exception to the
		// started-members rule); a third could not until it started.
	})
	// etcdctl and client/v3 check URLs themselves; a raw gRPC client gets
	// the server's answer.
	c := m.clientv3()
	raw := pb.NewClusterClient(c.ActiveConnection())
	if _, err := raw.MemberAdd(ctxT(t, 10*time.Second), &pb.MemberAddRequest{PeerURLs: []string{"ftp://127.0.0.1:2380"}}); err == nil || rpctypes.Error(err).Error() != rpctypes.ErrMemberBadURLs.Error() {
		t.Fatalf("member add with a bad URL: %v, want %v", err, rpctypes.ErrMemberBadURLs)
	}
	// Writes still work: the learner did not count towards the quorum.
	m.mustEtcdctl("put", "after", "members")
}
