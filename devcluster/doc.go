// Package devcluster runs a real, local Kubernetes control plane for
// development and tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, plus kwok, which fakes the nodes and the kubelet. Objects go
// through the real API server, admission, controllers and scheduler, and Pods
// become Running on fake nodes, but no container ever runs: there are no logs,
// exec, probes or real volumes.
//
// The binaries come from tools/devcluster/build.sh (`make cluster-bin`), which
// builds them from pinned Go modules into a cache folder whose path it prints
// with --print-dir; Options.BinDir or $MENGI_CLUSTER_BIN point at it.
//
// Start picks free loopback ports, makes certificates and service-account keys
// with crypto/x509, writes one kubeconfig per component, starts every process
// in its own process group and waits until the cluster can run a Deployment.
// Stop, SIGINT and SIGTERM stop the process groups; if the Go process dies in
// any other way (a panic, SIGKILL), the kernel kills the children because they
// are started with a parent-death signal.
//
// Tests share one cluster per test binary through the clustertest package.
package devcluster
