// Package e2e holds the end-to-end tests: the API, the store, the agent,
// the renderer and a real local Kubernetes cluster, all real, wired the way
// `mengi up` wires them. One cluster serves the whole test binary.
package e2e

import (
	"os"
	"testing"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.RunTests(m)) }
