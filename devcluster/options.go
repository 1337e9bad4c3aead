package devcluster

import (
	"log/slog"
	"time"
)

// EnvBinDir is the environment variable that names the folder with the
// control-plane binaries when Options.BinDir is empty.
const EnvBinDir = "MENGI_CLUSTER_BIN"

// Binaries returns the names of the executables Start expects in
// Options.BinDir, in start order.
func Binaries() []string {
	return []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
}

// Options configure Start. The zero value starts a throwaway cluster with two
// fake nodes in a fresh temporary folder, using the binaries named by
// $MENGI_CLUSTER_BIN.
type Options struct {
	// BinDir holds the binaries listed in Binaries. Empty means
	// $MENGI_CLUSTER_BIN, then the folder printed by
	// tools/devcluster/build.sh --print-dir of the enclosing repository.
	BinDir string

	// StateDir keeps certificates, etcd data, kubeconfigs, logs and the
	// status file. An existing StateDir is reused, so objects survive a
	// restart. Empty means a new temporary folder that Stop removes.
	StateDir string

	// APIPort is the kube-apiserver port on 127.0.0.1; 0 picks a free one.
	APIPort int

	// Nodes is the number of kwok fake nodes; 0 means 2.
	Nodes int

	// StartTimeout bounds Start as a whole, on top of ctx; 0 means 3 minutes.
	// Each step also has its own limit, named in its error.
	StartTimeout time.Duration

	// StopTimeout is how long Stop waits for a process after SIGTERM before
	// it kills its process group; 0 means 10 seconds.
	StopTimeout time.Duration

	// Logger receives progress messages; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Nodes <= 0 {
		o.Nodes = 2
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Minute
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
