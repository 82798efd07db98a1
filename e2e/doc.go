// Package e2e tests Ballast the way users install and run it.
//
// chart_test.go renders charts/ballast-operator with helm (HELM) for
// several value sets, decodes every object strictly into its Kubernetes type
// and checks what the chart promises: the CRDs and RBAC rules are exactly
// the generated ones in config/, the operator gets the flags its values ask
// for, the pods meet the restricted Pod Security Standard. Run it with
// `make helm-lint`.
//
// The files with the e2e build tag create a kind cluster, install the
// operator with helm and drive EtcdClusters through the Kubernetes API and
// etcd's client; see e2e_test.go and `make e2e`.
package e2e
