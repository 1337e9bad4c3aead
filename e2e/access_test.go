package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/agent"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// TestRegistryDecidesWhatIsApplied: the agent applies only what the
// operator's registry admits. A running deployment whose cluster an
// operator closes to its owner gets status error (AccessDenied) in its
// file and keeps running as it was; opened again, it is applied again. A
// file committed for a user who is not registered is never applied.
func TestRegistryDecidesWhatIsApplied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	id := e.create("granted", nil)
	e.waitFor(id, 60*time.Second, "running", status("running"))

	spec := registry.ClusterSpec{Name: "local", Kubeconfig: clustertest.Kubeconfig(t), Domain: "apps.test", Provider: "local",
		Users: []string{"someone-else@example.com"}}
	if _, err := e.reg.EnsureCluster(ctx, spec); err != nil {
		t.Fatal(err)
	}
	st := e.waitStatus(id, 30*time.Second, agent.ReasonAccessDenied)
	if st.Phase != schema.PhaseError || !strings.Contains(st.ErrorMessage, "user ada@example.com may not deploy to cluster local") {
		t.Errorf("status in the file after access was taken away: %+v", st)
	}
	if n := len(e.releaseSecrets("granted")); n != 1 {
		t.Errorf("%d Helm records of the closed deployment, want its one revision (kept, not pruned)", n)
	}

	spec.Users = []string{"ada@example.com"}
	if _, err := e.reg.EnsureCluster(ctx, spec); err != nil {
		t.Fatal(err)
	}
	e.waitFor(id, 60*time.Second, "running once access is granted again", func(d map[string]any) bool {
		return d["status"] == "running" && d["error_message"] == nil
	})

	// A file for a user the registry does not know, committed as a push is.
	d := e.record(id).Deployment()
	d.Metadata.ID, d.Metadata.UserID, d.Spec.Name, d.Status = uuid.Must(uuid.NewV7()).String(), uuid.NewString(), "stranger", nil
	content, err := schema.EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Mallory", Email: "mallory@example.com"}, Message: "a stranger's deployment\n",
			Changes: []gitstore.Change{{Path: e.path("stranger"), Content: content, Value: d}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st = e.waitStatus(d.Metadata.ID, 30*time.Second, agent.ReasonAccessDenied)
	if !strings.Contains(st.ErrorMessage, "metadata.user_id: user "+d.Metadata.UserID+" is not registered") {
		t.Errorf("status of a stranger's deployment: %+v", st)
	}
	if n := len(e.releaseSecrets("stranger")); n != 0 {
		t.Errorf("a stranger's deployment has %d Helm records", n)
	}
}

// waitStatus waits until the file of deployment id in Git has a status
// with this reason, and returns it.
func (e *env) waitStatus(id string, timeout time.Duration, reason string) *schema.Status {
	e.t.Helper()
	var st *schema.Status
	eventually(e.t, timeout, "status reason "+reason+" in the file", func() (bool, string) {
		r := e.record(id)
		if r == nil {
			return false, "no file"
		}
		d := r.Deployment()
		if st = d.Status; st == nil {
			return false, "no status"
		}
		return st.Reason == reason, string(st.Phase) + " " + st.Reason + " " + st.ErrorMessage
	})
	return st
}

// TestMassRemovalWaitsForConfirmation: a commit that deletes the files of
// every deployment on a cluster removes nothing from the cluster until an
// operator confirms the commit; then every release goes.
func TestMassRemovalWaitsForConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	names := []string{"mass-a", "mass-b"}
	for _, name := range names {
		e.waitFor(e.create(name, nil), 60*time.Second, "running", status("running"))
	}
	e.waitSettled(30 * time.Second)
	res, err := e.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Grace Hopper", Email: "grace@example.com"}, Message: "remove everything\n",
			Changes: []gitstore.Change{{Path: e.path(names[0])}, {Path: e.path(names[1])}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var hold *schema.PruneHold
	eventually(t, 30*time.Second, "the removal held in the cluster's status", func() (bool, string) {
		if c := e.reg.Cluster(e.cluster.ID); c.Status != nil && c.Status.PruneHold != nil {
			hold = c.Status.PruneHold
			return true, ""
		}
		return false, "no hold"
	})
	if hold.Commit != res.Commit.String() || len(hold.Releases) != 2 || hold.Of != 2 {
		t.Errorf("hold %+v, want both releases at %s", hold, res.Commit)
	}
	e.waitSettled(30 * time.Second)
	for _, name := range names {
		if n := len(e.releaseSecrets(name)); n != 1 {
			t.Errorf("%s: %d Helm records while the removal is held, want 1", name, n)
		}
	}
	if e.logs.count("removal held", "mengi prune --confirm "+hold.Commit[:8]) == 0 {
		t.Error("the agent's log does not say how to confirm")
	}
	if _, err := e.reg.ConfirmPrune(ctx, hold.Commit[:8]); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		eventually(t, 60*time.Second, name+" removed once confirmed", func() (bool, string) {
			n := len(e.releaseSecrets(name))
			return n == 0, strconv.Itoa(n) + " Helm records"
		})
	}
	eventually(t, 30*time.Second, "the hold cleared", func() (bool, string) {
		c := e.reg.Cluster(e.cluster.ID)
		return c.Status == nil || c.Status.PruneHold == nil, "still held"
	})
}
