package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Downgrades are relative to the cluster version, which differs between
// the two servers (etcd 3.7.x runs at 3.7, Ballast at 3.6): a step names
// the versions through templates and its output is compared with them as
// symbols.
//
//	{{cluster_version}}   the cluster version at the first use, "3.7" / "3.6"
//	{{downgrade_target}}  one minor below it, the only valid target
//	{{below_target}}      two minors below it
//
// From the first use on, whole version tokens equal to these
// (major.minor, or major.minor.0) read <cluster-version>,
// <downgrade-target> and <below-target> in the transcripts.
type downgradeVersions struct {
	major, minor int
}

func (d *downgradeVersions) version(minorsBelow int) string {
	return fmt.Sprintf("%d.%d", d.major, d.minor-minorsBelow)
}

var downgradeSyms = []string{"<cluster-version>", "<downgrade-target>", "<below-target>"}

// downgradeTemplate expands one of the templates above, learning the
// cluster version on first use.
func (e *env) downgradeTemplate(name string) string {
	if e.dg == nil {
		e.dg = e.learnClusterVersion()
	}
	switch name {
	case "cluster_version":
		return e.dg.version(0)
	case "downgrade_target":
		return e.dg.version(1)
	}
	return e.dg.version(2)
}

// learnClusterVersion reads /version until the cluster version is decided
// (a fresh server records it shortly after it is ready).
func (e *env) learnClusterVersion() *downgradeVersions {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last string
	for {
		v, err := e.versions(ctx)
		if err == nil {
			last = v.Cluster
			parts := strings.Split(v.Cluster, ".")
			if len(parts) == 3 {
				major, err1 := strconv.Atoi(parts[0])
				minor, err2 := strconv.Atoi(parts[1])
				if err1 == nil && err2 == nil && minor > 1 {
					return &downgradeVersions{major: major, minor: minor}
				}
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: no cluster version in /version (last %q, %v)", e.srv.kind, last, err)
		case <-time.After(100 * time.Millisecond): // polling: /version has no watch
		}
	}
}

// httpVersions is /version's body.
type httpVersions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"`
}

func (e *env) versions(ctx context.Context) (*httpVersions, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.client+"/version", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v httpVersions
	return &v, json.NewDecoder(resp.Body).Decode(&v)
}

// normalizeDowngrade replaces the downgrade versions by their symbols once
// they are known.
func (e *env) normalizeDowngrade(s string) string {
	if e.dg == nil {
		return s
	}
	for i, sym := range downgradeSyms {
		re := regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(e.dg.version(i)) + `(\.0)?([^0-9.]|$)`)
		// Twice: adjacent tokens share the character between them.
		for range 2 {
			s = re.ReplaceAllString(s, "${1}"+sym+"${2}${3}")
		}
	}
	return s
}

// awaitClusterVersion waits (at most 20 s) until /version reports the
// cluster version and the storage version at minorsBelow minors below the
// first cluster version, then reports both and the downgrade state from
// Status. The leader moves the cluster version on its own, every few
// seconds in both servers, and nothing announces it: the step polls.
func awaitClusterVersion(minorsBelow int) step {
	return fn(fmt.Sprintf("await the cluster version %d minor(s) down", minorsBelow), func(ctx context.Context, e *env) string {
		if e.dg == nil {
			e.dg = e.learnClusterVersion()
		}
		want := e.dg.version(minorsBelow) + ".0"
		var v *httpVersions
		var err error
		for {
			if v, err = e.versions(ctx); err == nil && v.Cluster == want && v.Storage == want {
				break
			}
			select {
			case <-ctx.Done():
				if err != nil {
					return fmt.Sprintf("gave up waiting for cluster version %s: %v\n", want, err)
				}
				return fmt.Sprintf("gave up waiting for cluster version %s: cluster %s storage %s\n", want, v.Cluster, v.Storage)
			case <-time.After(100 * time.Millisecond): // polling: no event announces it
			}
		}
		out := fmt.Sprintf("cluster version %s, storage version %s\n", v.Cluster, v.Storage)
		if st, err := e.c.Status(ctx, e.srv.client); err == nil {
			out += fmt.Sprintf("status: storage version %s\n", st.StorageVersion)
		}
		return out + downgradeStatus(ctx, e)
	})
}

func downgradeStatus(ctx context.Context, e *env) string {
	st, err := e.c.Status(ctx, e.srv.client)
	if err != nil {
		return "status: " + fmtErr(err) + "\n"
	}
	// (Not the storage version: the leader may move it at any moment.)
	return fmt.Sprintf("status: downgrade enabled %v, target %q\n",
		st.DowngradeInfo.GetEnabled(), st.DowngradeInfo.GetTargetVersion())
}

// TestDowngrade validates, enables and cancels a downgrade with etcdctl:
// etcd's answers and errors, the downgrade state in Status, and the
// cluster and storage versions moving down to the target and back up.
func TestDowngrade(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("downgrade", "validate", "{{downgrade_target}}"),
		ctl("downgrade", "validate", "{{downgrade_target}}.9"),
		ctlFail("downgrade", "validate", "{{cluster_version}}"),
		ctlFail("downgrade", "validate", "{{below_target}}"),
		ctlFail("downgrade", "validate", "v{{downgrade_target}}"),
		ctlFail("downgrade", "validate", "3"),
		ctlFail("downgrade", "validate", "abc"),
		ctlFail("downgrade", "enable", "{{below_target}}"),
		ctlFail("downgrade", "enable", "latest"),
		// Nothing to cancel: etcd answers success all the same.
		ctl("downgrade", "cancel"),
		fn("status before", downgradeStatus),
		ctl("downgrade", "enable", "{{downgrade_target}}"),
		fn("status after enable", downgradeStatus),
		// Once every member allows it, the leader lowers the cluster
		// version to the target, and the storage follows.
		awaitClusterVersion(1),
		ctlFail("downgrade", "validate", "{{downgrade_target}}"),
		ctlFail("downgrade", "enable", "{{downgrade_target}}"),
		// valid for the lowered cluster version, but one is under way
		ctlFail("downgrade", "validate", "{{below_target}}"),
		ctl("downgrade", "cancel"),
		fn("status after cancel", downgradeStatus),
		// Without a downgrade, the cluster version goes back up.
		awaitClusterVersion(0),
		ctl("downgrade", "cancel"),
		ctl("downgrade", "validate", "{{downgrade_target}}"),
	}
	runScenario(t, scenario{name: "downgrade", steps: steps})
}
