package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBatchStatusCommits: ten deployments created at once all run, and the
// status changes that happen together share commits (fewer than two per
// deployment: provisioning and running); the repository stays clean.
func TestBatchStatusCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 10
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = e.create(fmt.Sprintf("batch-%d", i), nil)
		}()
	}
	wg.Wait()
	for _, id := range ids {
		e.waitFor(id, 90*time.Second, "running", status("running"))
	}
	e.waitSettled(30 * time.Second)

	// The agent's commits about deployments carry Deployment-Id trailers.
	log := e.git("log", "--author=agent@mengi.local", "--format=%s|%(trailers:key=Deployment-Id,valueonly,separator=%x2C)", "main")
	statusCommits, shared := 0, 0
	perDeployment := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		subject, trailers, _ := strings.Cut(l, "|")
		if trailers == "" {
			continue // a cluster status commit
		}
		statusCommits++
		if strings.HasPrefix(subject, "status of ") {
			shared++
		}
		for _, id := range strings.Split(trailers, ",") {
			perDeployment[id]++
		}
	}
	t.Logf("%d status commits for %d deployments, %d of them shared", statusCommits, n, shared)
	if statusCommits >= 2*n || shared == 0 {
		t.Errorf("%d status commits (%d shared) for %d deployments; want fewer than %d, some shared:\n%s", statusCommits, shared, n, 2*n, log)
	}
	for _, id := range ids {
		if perDeployment[id] == 0 {
			t.Errorf("no status commit names deployment %s", id)
		}
	}
	e.git("fsck", "--strict", "--no-dangling")
}
