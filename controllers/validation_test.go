package controllers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// TestValidation sends specs to the real API server: the CRD's OpenAPI
// schema and CEL rules must refuse bad ones with a message that says what
// to fix, and fill in the defaults of good ones.
func TestValidation(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	obj := func(name, spec string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("EtcdCluster"))
		u.SetName(name)
		u.SetNamespace(e.ns)
		var s map[string]any
		if err := json.Unmarshal([]byte(spec), &s); err != nil {
			t.Fatalf("bad test spec %s: %v", spec, err)
		}
		u.Object["spec"] = s
		return u
	}

	for _, tc := range []struct {
		name, spec string
		want       []string // substrings of the error
	}{
		{"size-0", `{"size":0,"version":"0.1.0"}`, []string{"spec.size", "greater than or equal to 1"}},
		{"size-10", `{"size":10,"version":"0.1.0"}`, []string{"spec.size", "less than or equal to 9"}},
		{"version-latest", `{"size":3,"version":"latest"}`, []string{"spec.version", "version must be a Ballast release such as 0.1.0"}},
		{"version-missing", `{"size":3}`, []string{"spec.version", "Required value"}},
		{"tls", `{"size":3,"version":"0.1.0","tls":{"clientSecretName":"x"}}`, []string{"spec.tls is not supported by this operator version yet"}},
		{"heartbeat-vs-election", `{"size":3,"version":"0.1.0","options":{"heartbeatIntervalMillis":300}}`, []string{"electionTimeoutMillis (default 1000) must be at least 5 times heartbeatIntervalMillis"}},
		{"election-too-short", `{"size":3,"version":"0.1.0","options":{"heartbeatIntervalMillis":100,"electionTimeoutMillis":400}}`, []string{"at least 5 times"}},
		{"ephemeral-with-class", `{"size":3,"version":"0.1.0","storage":{"ephemeral":true,"storageClassName":"fast"}}`, []string{"storageClassName cannot be set together with ephemeral: true"}},
		{"revision-retention", `{"size":3,"version":"0.1.0","options":{"autoCompactionMode":"Revision","autoCompactionRetention":"1h"}}`, []string{"whole number of revisions in Revision mode"}},
		{"periodic-retention", `{"size":3,"version":"0.1.0","options":{"autoCompactionRetention":"soon"}}`, []string{"must be a duration such as 1h"}},
		{"compaction-mode", `{"size":3,"version":"0.1.0","options":{"autoCompactionMode":"hourly"}}`, []string{"spec.options.autoCompactionMode", `supported values: "Periodic", "Revision"`}},
		{"quota-zero", `{"size":3,"version":"0.1.0","options":{"quotaBackendBytes":"0"}}`, []string{"quotaBackendBytes must be greater than 0 and at most 100Gi"}},
		{"quota-huge", `{"size":3,"version":"0.1.0","options":{"quotaBackendBytes":"200Gi"}}`, []string{"quotaBackendBytes must be greater than 0 and at most 100Gi"}},
		{"quota-int", `{"size":3,"version":"0.1.0","options":{"quotaBackendBytes":0}}`, []string{"quotaBackendBytes must be greater than 0 and at most 100Gi"}},
		{"retention-policy", `{"size":3,"version":"0.1.0","storage":{"retentionPolicy":"Keep"}}`, []string{"spec.storage.retentionPolicy", `supported values: "Retain", "Delete"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(ctx, obj("bad-"+tc.name, tc.spec))
			if err == nil {
				t.Fatalf("spec %s was accepted", tc.spec)
			}
			if !apierrors.IsInvalid(err) {
				t.Errorf("error %v is not Invalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("defaults", func(t *testing.T) {
		if err := k8s.Create(ctx, obj("defaults", `{"version":"0.1.0","options":{"quotaBackendBytes":"4Gi","autoCompactionMode":"Revision","autoCompactionRetention":"1000"}}`)); err != nil {
			t.Fatal(err)
		}
		c := &v1alpha1.EtcdCluster{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "defaults"}, c); err != nil {
			t.Fatal(err)
		}
		if c.Spec.Size != 3 || c.Spec.Storage.Size == nil || c.Spec.Storage.Size.String() != "8Gi" || c.Spec.Storage.RetentionPolicy != v1alpha1.RetainStorage {
			t.Errorf("defaults: size %d storage %+v", c.Spec.Size, c.Spec.Storage)
		}
	})

	t.Run("immutable-storage", func(t *testing.T) {
		if err := k8s.Create(ctx, obj("storage", `{"size":1,"version":"0.1.0","storage":{"size":"1Gi"}}`)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ patch, want string }{
			{`{"spec":{"storage":{"size":"2Gi"}}}`, "storage.size cannot be changed after creation"},
			{`{"spec":{"storage":{"ephemeral":true}}}`, "storage.ephemeral cannot be changed after creation"},
			{`{"spec":{"storage":{"storageClassName":"fast"}}}`, "storage.storageClassName cannot be changed after creation"},
		} {
			err := k8s.Patch(ctx, e.cluster("storage"), client.RawPatch(types.MergePatchType, []byte(tc.patch)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("patch %s: error %v, want %q", tc.patch, err, tc.want)
			}
		}
		// What may change does.
		if err := k8s.Patch(ctx, e.cluster("storage"), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"size":3,"storage":{"retentionPolicy":"Delete"}}}`))); err != nil {
			t.Errorf("changing size and retention policy: %v", err)
		}
	})
}
