package main

import (
	"os"
	"testing"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// helperEnv makes the test binary act as the mengi command (see mengiCmd).
const helperEnv = "MENGI_HELPER_PROCESS"

// TestMain runs the test binary as the mengi command when a test starts it
// as a child process (so tests drive the real command, signals and exit
// codes included); otherwise it runs the tests, sharing one local
// Kubernetes cluster between those that need it (started on first use).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runAsMengi(os.Args[1:]))
	}
	os.Exit(clustertest.RunTests(m))
}

// runAsMengi runs `mengi args...` as main does and returns the exit status.
func runAsMengi(args []string) int {
	return servercmd.Run(newApp(), append([]string{"mengi"}, args...))
}
