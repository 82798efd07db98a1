// Package v1alpha1 is the etcd.ballast.dev/v1alpha1 API: EtcdCluster, an etcd
// v3 compatible cluster of `ballast node` members run by `ballast operator`.
//
// The CRD (config/crd/bases) and the deep-copy functions
// (zz_generated.deepcopy.go) are generated from the markers in this package by
// `make manifests` and `make generate`.
//
// +kubebuilder:object:generate=true
// +groupName=etcd.ballast.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: "etcd.ballast.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes keeps this package's imports to the standard library and
// k8s.io/apimachinery (plus core types), so that clients can import the API
// without controller-runtime.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &EtcdCluster{}, &EtcdClusterList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
