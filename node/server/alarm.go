package server

import (
	"context"
	"fmt"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/membership"
)

// alarmStore holds the raised alarms, persisted in the "alarm" bucket as
// etcd does: the key is a marshalled AlarmMember, the value empty.
type alarmStore struct {
	mu     sync.RWMutex
	alarms map[alarmKey]bool
}

type alarmKey struct {
	member uint64
	alarm  pb.AlarmType
}

func loadAlarms(be *backend.Backend) *alarmStore {
	a := &alarmStore{alarms: map[alarmKey]bool{}}
	be.Range(backend.Alarm, []byte{}, []byte{0xff, 0xff, 0xff, 0xff}, 0, func(k, _ []byte) bool {
		m := &pb.AlarmMember{}
		if proto.Unmarshal(k, m) == nil {
			a.alarms[alarmKey{m.GetMemberID(), m.GetAlarm()}] = true
		}
		return true
	})
	return a
}

func (a *alarmStore) noSpace() bool { return a.has(pb.AlarmType_NOSPACE) }

func (a *alarmStore) has(t pb.AlarmType) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for k := range a.alarms {
		if k.alarm == t {
			return true
		}
	}
	return false
}

// list returns the alarms of type t (all for NONE), sorted.
func (a *alarmStore) list(t pb.AlarmType) []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []*pb.AlarmMember
	for k := range a.alarms {
		if t == pb.AlarmType_NONE || k.alarm == t {
			out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.alarm})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

// apply runs an AlarmRequest in the apply loop.
func (a *alarmStore) apply(tx *backend.BatchTx, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}}
	switch r.GetAction() {
	case pb.AlarmRequest_GET:
		resp.Alarms = a.list(r.GetAlarm())
	case pb.AlarmRequest_ACTIVATE:
		if r.GetAlarm() == pb.AlarmType_NONE {
			return resp, nil
		}
		m := &pb.AlarmMember{MemberID: r.GetMemberID(), Alarm: r.GetAlarm()}
		k := alarmKey{m.MemberID, m.Alarm}
		a.mu.Lock()
		if !a.alarms[k] {
			a.alarms[k] = true
			key, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			tx.Put(backend.Alarm, key, []byte{})
		}
		a.mu.Unlock()
		resp.Alarms = []*pb.AlarmMember{m}
	case pb.AlarmRequest_DEACTIVATE:
		k := alarmKey{r.GetMemberID(), r.GetAlarm()}
		a.mu.Lock()
		if a.alarms[k] {
			delete(a.alarms, k)
			key, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.AlarmMember{MemberID: k.member, Alarm: k.alarm})
			tx.Delete(backend.Alarm, key)
			resp.Alarms = []*pb.AlarmMember{{MemberID: k.member, Alarm: k.alarm}}
		}
		a.mu.Unlock()
	default:
		return nil, rpctypes.ErrGRPCNotCapable
	}
	return resp, nil
}

// strings renders alarms as etcd's Status errors do.
func (a *alarmStore) strings() []string {
	var out []string
	for _, m := range a.list(pb.AlarmType_NONE) {
		out = append(out, fmt.Sprintf("memberID:%d alarm:%s", m.MemberID, m.Alarm))
	}
	return out
}

// quotaOverheadBytes is added to every write's size in the quota check, for
// the index and page overhead a key costs.
const quotaOverheadBytes = 256

// checkQuota refuses a write that would take the backend past its quota and
// raises the NOSPACE alarm (through raft, so every member refuses writes).
func (s *Server) checkQuota(ctx context.Context, cost int) error {
	if s.alarms.noSpace() {
		return rpctypes.ErrGRPCNoSpace
	}
	if s.be.Size()+int64(cost+quotaOverheadBytes) <= s.opts.quota() {
		return nil
	}
	s.lg.Warn("the backend is over its quota; raising the NOSPACE alarm. Free space: compact, defragment, then disarm with 'etcdctl alarm disarm'",
		zap.Int64("size", s.be.Size()), zap.Int64("quota", s.opts.quota()))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
		defer cancel()
		_, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: s.id, Alarm: pb.AlarmType_NOSPACE,
		}})
		if err != nil {
			s.lg.Warn("could not raise the NOSPACE alarm", zap.Error(err))
		}
	}()
	return rpctypes.ErrGRPCNoSpace
}

func idOrNone(id uint64) string {
	if id == 0 {
		return "none"
	}
	return membership.IDString(id)
}
