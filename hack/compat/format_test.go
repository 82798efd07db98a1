package compat

import (
	"errors"
	"fmt"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
)

// Transcript formatting for client/v3 steps. Lease IDs are printed in hex
// so that the normaliser turns them into symbols.

func fmtErr(err error) string {
	if err == nil {
		return "ok"
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	return fmt.Sprintf("error code=%s desc=%q", code, rpctypes.ErrorDesc(err))
}

func fmtKV(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	v := fmt.Sprintf("%q", kv.Value)
	if len(kv.Value) > 64 {
		v = fmt.Sprintf("%q...(%d bytes)", kv.Value[:32], len(kv.Value))
	}
	return fmt.Sprintf("%q=%s create=%d mod=%d ver=%d lease=%x", kv.Key, v, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func fmtHeader(h *pb.ResponseHeader) string {
	if h == nil {
		return "header=<nil>"
	}
	return fmt.Sprintf("rev=%d", h.Revision)
}

func fmtRange(r *pb.RangeResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "range %s count=%d more=%v kvs=%d\n", fmtHeader(r.Header), r.Count, r.More, len(r.Kvs))
	for _, kv := range r.Kvs {
		b.WriteString("  " + fmtKV(kv) + "\n")
	}
	return b.String()
}

func fmtGet(r *clientv3.GetResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	return fmtRange((*pb.RangeResponse)(r))
}

func fmtPut(r *clientv3.PutResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	s := fmt.Sprintf("put %s", fmtHeader(r.Header))
	if r.PrevKv != nil {
		s += " prev=" + fmtKV(r.PrevKv)
	}
	return s + "\n"
}

func fmtDel(r *clientv3.DeleteResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "delete %s deleted=%d\n", fmtHeader(r.Header), r.Deleted)
	for _, kv := range r.PrevKvs {
		b.WriteString("  prev " + fmtKV(kv) + "\n")
	}
	return b.String()
}

func fmtTxn(r *clientv3.TxnResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	var b strings.Builder
	writeTxn(&b, (*pb.TxnResponse)(r), "")
	return b.String()
}

func writeTxn(b *strings.Builder, r *pb.TxnResponse, indent string) {
	fmt.Fprintf(b, "%stxn %s succeeded=%v responses=%d\n", indent, fmtHeader(r.Header), r.Succeeded, len(r.Responses))
	for _, op := range r.Responses {
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			for _, l := range strings.Split(strings.TrimSuffix(fmtRange(v.ResponseRange), "\n"), "\n") {
				b.WriteString(indent + "  " + l + "\n")
			}
		case *pb.ResponseOp_ResponsePut:
			fmt.Fprintf(b, "%s  put %s", indent, fmtHeader(v.ResponsePut.Header))
			if v.ResponsePut.PrevKv != nil {
				fmt.Fprintf(b, " prev=%s", fmtKV(v.ResponsePut.PrevKv))
			}
			b.WriteString("\n")
		case *pb.ResponseOp_ResponseDeleteRange:
			fmt.Fprintf(b, "%s  delete %s deleted=%d\n", indent, fmtHeader(v.ResponseDeleteRange.Header), v.ResponseDeleteRange.Deleted)
			for _, kv := range v.ResponseDeleteRange.PrevKvs {
				fmt.Fprintf(b, "%s    prev %s\n", indent, fmtKV(kv))
			}
		case *pb.ResponseOp_ResponseTxn:
			writeTxn(b, v.ResponseTxn, indent+"  ")
		default:
			fmt.Fprintf(b, "%s  unknown response %T\n", indent, v)
		}
	}
}

func fmtEvent(ev *clientv3.Event) string {
	s := fmt.Sprintf("%s %s", ev.Type, fmtKV(ev.Kv))
	if ev.PrevKv != nil {
		s += " prev=" + fmtKV(ev.PrevKv)
	}
	return s
}

func fmtWatchResp(wr clientv3.WatchResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "watch response %s created=%v canceled=%v compact_revision=%d progress=%v events=%d",
		fmtHeader(wr.Header), wr.Created, wr.Canceled, wr.CompactRevision, wr.IsProgressNotify(), len(wr.Events))
	if err := wr.Err(); err != nil {
		fmt.Fprintf(&b, " err=%q", err.Error())
	}
	if wr.Canceled && wr.CancelReason != "" {
		fmt.Fprintf(&b, " reason=%q", wr.CancelReason)
	}
	b.WriteString("\n")
	for _, ev := range wr.Events {
		b.WriteString("  " + fmtEvent(ev) + "\n")
	}
	return b.String()
}

// collectWatch reads wch until it has seen n events, the channel closes, or
// d passes, printing every response. Responses are reported one by one, so
// a different batching of the same events shows up as a difference.
func collectWatch(wch clientv3.WatchChan, n int, d time.Duration) string {
	var b strings.Builder
	timer := time.NewTimer(d)
	defer timer.Stop()
	seen := 0
	for seen < n {
		select {
		case wr, ok := <-wch:
			if !ok {
				b.WriteString("watch channel closed\n")
				return b.String()
			}
			b.WriteString(fmtWatchResp(wr))
			seen += len(wr.Events)
			if wr.Canceled {
				// the client closes the channel after a cancel
				continue
			}
		case <-timer.C:
			fmt.Fprintf(&b, "no more responses within %v (%d of %d events)\n", d, seen, n)
			return b.String()
		}
	}
	return b.String()
}

// collectWatchEnd reads wch until it closes or d passes.
func collectWatchEnd(wch clientv3.WatchChan, d time.Duration) string {
	var b strings.Builder
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				b.WriteString("watch channel closed\n")
				return b.String()
			}
			b.WriteString(fmtWatchResp(wr))
		case <-timer.C:
			fmt.Fprintf(&b, "channel still open after %v\n", d)
			return b.String()
		}
	}
}
