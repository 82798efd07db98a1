package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// apply server-side-applies obj, owned by c. Only the fields the operator
// sets are sent, so defaults the API server fills in are not fought over
// and an unchanged object is not rewritten.
func (r *EtcdClusterReconciler) apply(ctx context.Context, c *v1alpha1.EtcdCluster, obj client.Object) error {
	if err := controllerutil.SetControllerReference(c, obj, r.Scheme()); err != nil {
		return err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	// Typed objects carry empty status and creation timestamps that are
	// not ours to set.
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	if tmpls, ok, _ := unstructured.NestedSlice(u, "spec", "volumeClaimTemplates"); ok {
		for _, t := range tmpls {
			if m, ok := t.(map[string]any); ok {
				delete(m, "status")
				unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
			}
		}
		_ = unstructured.SetNestedSlice(u, tmpls, "spec", "volumeClaimTemplates")
	}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u}),
		client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	return nil
}
