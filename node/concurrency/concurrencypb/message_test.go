package concurrencypb

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	testHeader = &etcdserverpb.ResponseHeader{ClusterId: 1 << 60, MemberId: 7, Revision: 42, RaftTerm: 3}
	testKV     = &mvccpb.KeyValue{Key: []byte("e/1"), CreateRevision: 5, ModRevision: 6, Version: 2, Value: []byte("v"), Lease: 99}
	testLeader = &LeaderKey{Name: []byte("e"), Key: []byte("e/1"), Rev: 9, Lease: 4}
)

// TestWireFormat compares each message's binary and gateway JSON encoding
// with what etcd v3.7.3's generated v3lockpb and v3electionpb produce for
// the same values (recorded from them; hack/compat checks the live
// servers against each other).
func TestWireFormat(t *testing.T) {
	const hdrHex = "0a10088080808080808080101007182a2003"
	const hdrJSON = `"header":{"cluster_id":"1152921504606846976","member_id":"7","revision":"42","raft_term":"3"}`
	tests := []struct {
		msg      v1
		wire, js string
		blank    v1
	}{
		{&LockRequest{Name: []byte("n"), Lease: -5}, "0a016e10fbffffffffffffffff01", `{"name":"bg==","lease":"-5"}`, new(LockRequest)},
		{&LockResponse{Header: testHeader, Key: []byte("k")}, hdrHex + "12016b", `{` + hdrJSON + `,"key":"aw=="}`, new(LockResponse)},
		{&UnlockRequest{Key: []byte("k")}, "0a016b", `{"key":"aw=="}`, new(UnlockRequest)},
		{&UnlockResponse{Header: testHeader}, hdrHex, `{` + hdrJSON + `}`, new(UnlockResponse)},
		{&CampaignRequest{Name: []byte("e"), Lease: 12345678901, Value: []byte("v")}, "0a016510b5b8f0fe2d1a0176", `{"name":"ZQ==","lease":"12345678901","value":"dg=="}`, new(CampaignRequest)},
		{&CampaignResponse{Header: testHeader, Leader: testLeader}, hdrHex + "120c0a01651203652f3118092004", `{` + hdrJSON + `,"leader":{"name":"ZQ==","key":"ZS8x","rev":"9","lease":"4"}}`, new(CampaignResponse)},
		{&LeaderRequest{Name: []byte("e")}, "0a0165", `{"name":"ZQ=="}`, new(LeaderRequest)},
		{&LeaderResponse{Header: testHeader, Kv: testKV}, hdrHex + "12100a03652f311005180620022a01763063", `{` + hdrJSON + `,"kv":{"key":"ZS8x","create_revision":"5","mod_revision":"6","version":"2","value":"dg==","lease":"99"}}`, new(LeaderResponse)},
		{&ResignRequest{Leader: testLeader}, "0a0c0a01651203652f3118092004", `{"leader":{"name":"ZQ==","key":"ZS8x","rev":"9","lease":"4"}}`, new(ResignRequest)},
		{&ResignResponse{Header: testHeader}, hdrHex, `{` + hdrJSON + `}`, new(ResignResponse)},
		{&ProclaimRequest{Leader: testLeader, Value: []byte("x")}, "0a0c0a01651203652f3118092004120178", `{"leader":{"name":"ZQ==","key":"ZS8x","rev":"9","lease":"4"},"value":"eA=="}`, new(ProclaimRequest)},
		{&ProclaimResponse{Header: testHeader}, hdrHex, `{` + hdrJSON + `}`, new(ProclaimResponse)},
		{&LockRequest{}, "", `{}`, new(LockRequest)},
	}
	for _, tt := range tests {
		name := reflect.TypeOf(tt.msg).Elem().Name()
		t.Run(name, func(t *testing.T) {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(V2(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != tt.wire {
				t.Errorf("wire = %s, want %s", got, tt.wire)
			}
			back := tt.blank
			if err := proto.Unmarshal(b, V2(back)); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(V2(back), V2(tt.msg)) {
				t.Errorf("decoded %v, want %v", back, tt.msg)
			}
			j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(V2(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, j); err != nil {
				t.Fatal(err)
			}
			if compact.String() != tt.js {
				t.Errorf("json = %s, want %s", compact.String(), tt.js)
			}
			back.Reset()
			if err := protojson.Unmarshal([]byte(tt.js), V2(back)); err != nil || !proto.Equal(V2(back), V2(tt.msg)) {
				t.Errorf("json decoded %v (%v), want %v", back, err, tt.msg)
			}
		})
	}
}
