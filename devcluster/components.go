package devcluster

import (
	"path/filepath"
	"strconv"
)

// The command lines of the control-plane components. Every listener is on
// 127.0.0.1 and every port comes from Ports.

func etcdArgs(dir string, p Ports) []string {
	client := "http://" + loopback(p.Etcd)
	peer := "http://" + loopback(p.EtcdPeer)
	return []string{
		"--name", "mengi", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "mengi=" + peer,
		"--quota-backend-bytes", strconv.Itoa(2 << 30),
		// A throwaway or developer cluster: losing the last writes on an
		// OS crash is fine, and fsync is what makes etcd slow on CI disks.
		"--unsafe-no-fsync", "--log-level", "warn",
	}
}

func apiserverArgs(pk *pki, p Ports) []string {
	return []string{
		"--etcd-servers", "http://" + loopback(p.Etcd),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(p.APIServer),
		"--tls-cert-file", pk.path("apiserver.crt"), "--tls-private-key-file", pk.path("apiserver.key"),
		"--client-ca-file", pk.path("ca.crt"), "--token-auth-file", pk.path("tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", pk.path("sa.pub"),
		"--service-account-signing-key-file", pk.path("sa.key"),
		"--service-cluster-ip-range", serviceCIDR, "--allow-privileged=true",
		// With a loopback advertise address the endpoint reconciler would
		// publish 127.0.0.1 for the kubernetes Service; the API server's own
		// test server turns it off the same way.
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
	}
}

func controllerManagerArgs(dir, kubeconfig string, pk *pki, p Ports) []string {
	return []string{
		"--kubeconfig", kubeconfig,
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(p.ControllerManager),
		"--cert-dir", filepath.Join(dir, "kcm"),
		"--service-account-private-key-file", pk.path("sa.key"), "--root-ca-file", pk.path("ca.crt"),
		"--use-service-account-credentials=true", "--leader-elect=false",
		"--cluster-name", "mengi-dev", "--profiling=false",
	}
}

func schedulerArgs(dir, kubeconfig string, p Ports) []string {
	return []string{
		"--kubeconfig", kubeconfig,
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(p.Scheduler),
		"--cert-dir", filepath.Join(dir, "scheduler"),
		"--leader-elect=false", "--profiling=false",
	}
}
