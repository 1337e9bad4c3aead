package render_test

import (
	"os"
	"testing"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// The cluster starts only for the tests that ask for it (dry-run, install).
func TestMain(m *testing.M) { os.Exit(clustertest.RunTests(m)) }
