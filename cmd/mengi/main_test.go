package main

import (
	"os"
	"testing"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// TestMain shares one local Kubernetes cluster between the tests that need
// it (started on first use; the other tests never start it).
func TestMain(m *testing.M) { os.Exit(clustertest.RunTests(m)) }
