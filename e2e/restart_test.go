package e2e

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mengi-cloud/gitops/agent"
	"github.com/mengi-cloud/gitops/gitstore"
)

// TestRestartCatchesUp: while the agent is stopped, one deployment file is
// deleted by a commit and another deployment is created; a new agent on
// the same repository prunes the orphaned release, applies the new one,
// leaves the unchanged one alone and moves the synced ref to the head.
func TestRestartCatchesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldID := e.create("restart-old", nil)
	keepID := e.create("restart-keep", nil)
	e.waitFor(oldID, 60*time.Second, "running", status("running"))
	e.waitFor(keepID, 60*time.Second, "running", status("running"))
	e.waitSettled(30 * time.Second)
	e.stopTheAgent()
	syncedBefore, err := e.store.Ref(agent.SyncedRef)
	if err != nil || syncedBefore != e.store.Head() {
		t.Fatalf("synced ref %s, head %s (%v)", syncedBefore, e.store.Head(), err)
	}

	// An engineer's commit removes a file (as a merged pull request would).
	_, err = e.store.Apply(context.Background(), func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{
			Author:  gitstore.Signature{Name: "Grace Hopper", Email: "grace@example.com"},
			Message: "remove restart-old",
			Changes: []gitstore.Change{{Path: e.path("restart-old")}},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	newID := e.create("restart-new", nil)
	if s, _ := e.store.Ref(agent.SyncedRef); s != syncedBefore {
		t.Fatalf("the synced ref moved without an agent: %s", s)
	}
	if len(e.releaseSecrets("restart-new")) != 0 || len(e.releaseSecrets("restart-old")) == 0 {
		t.Fatal("the cluster changed while no agent ran")
	}

	e.startAgent()
	e.waitFor(newID, 60*time.Second, "running after the restart", status("running"))
	eventually(t, 60*time.Second, "the orphaned release pruned", func() (bool, string) {
		if n := len(e.releaseSecrets("restart-old")); n > 0 {
			return false, "Helm records left"
		}
		_, err := e.kube.CoreV1().Namespaces().Get(context.Background(), e.ns("restart-old"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), "namespace still there"
	})
	e.waitSettled(30 * time.Second)
	if synced, _ := e.store.Ref(agent.SyncedRef); synced != e.store.Head() {
		t.Errorf("synced ref %s; head %s", synced, e.store.Head())
	}
	// Re-checked, not re-applied.
	if got := revisions(e.releaseSecrets("restart-keep")); got != "1:deployed" {
		t.Errorf("the unchanged deployment's Helm records after the restart: %s", got)
	}
	if ok, note := e.deploymentReady(e.ns("restart-keep"), "restart-keep", 1); !ok {
		t.Errorf("restart-keep on the cluster: %s", note)
	}
	if code, _ := e.call("GET", "/deployments/"+keepID, nil); code != 200 {
		t.Errorf("GET restart-keep: %d", code)
	}
}
