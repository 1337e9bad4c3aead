package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// TestPushedOperatorFilesAreInert: users, keys and clusters live in the
// operator's registry. A commit to the deployments repository that adds a
// key hash to a user's file, a new user with a key, a cluster open to an
// attacker or a copy of a registered cluster with another user list,
// changes nothing: the keys get 401, the clusters stay closed, and the
// registry has no new commit.
func TestPushedOperatorFilesAreInert(t *testing.T) {
	e := newEnv(t)
	registryLog := e.gitIn(t, e.reg.Dir(), "log", "--format=%H", "main")

	minted, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	alice := *e.alice.user
	alice.Keys = append(alice.Keys, schema.APIKey{Prefix: minted[:8], SHA256: registry.HashKey(minted), CreatedAt: start})
	mallory := schema.User{APIVersion: schema.APIVersion, Kind: schema.KindUser, ID: uuid.NewString(), Name: "Mallory",
		Email: "mallory@example.com", CreatedAt: start, Keys: []schema.APIKey{{Prefix: minted[:8], SHA256: registry.HashKey(minted), CreatedAt: start}}}
	open := *e.private
	open.Users = []string{"alice@example.com"}
	evil := schema.Cluster{APIVersion: schema.APIVersion, Kind: schema.KindCluster, ID: uuid.NewString(), Name: "evil",
		Kubeconfig: "/etc/mengi/prod.kubeconfig", CreatedAt: start}
	var head string
	for _, f := range []struct {
		path string
		rec  any
	}{
		{gitstore.UserPath(alice.ID), &alice},
		{gitstore.UserPath(mallory.ID), &mallory},
		{gitstore.ClusterPath(open.ID), &open},
		{gitstore.ClusterPath(evil.ID), &evil},
	} {
		content, err := schema.EncodeRecord(f.rec)
		if err != nil {
			t.Fatal(err)
		}
		head = e.commitExternally(t, f.path, content, "add "+f.path+"\n")
	}
	e.waitHead(t, head)

	for _, key := range []string{minted} {
		r := e.do(t, req{method: "GET", path: "/deployments", key: key}).expect(t, http.StatusUnauthorized)
		if d := r.detail(t); d != "Invalid API key" {
			t.Errorf("a key pushed into the deployments repository: %q", d)
		}
	}
	for _, c := range []*schema.Cluster{e.private, &evil} {
		r := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(c, "sneaky")}).expect(t, http.StatusNotFound)
		if d := r.detail(t); d != "Cluster not found" {
			t.Errorf("create on cluster %s opened by a push: %q", c.Name, d)
		}
	}
	if got := e.gitIn(t, e.reg.Dir(), "log", "--format=%H", "main"); got != registryLog {
		t.Errorf("the registry changed:\n%s\nwas:\n%s", got, registryLog)
	}
}

// TestDeploymentOnClusterItsOwnerMayNotUse: a file pushed with Alice's
// user_id on a cluster only Bob may use is shown to Alice in status error
// with the reason, cannot be changed (403) but can be deleted; the same
// holds for a deployment whose cluster an operator closed to its owner
// afterwards.
func TestDeploymentOnClusterItsOwnerMayNotUse(t *testing.T) {
	e := newEnv(t)
	id := uuid.NewString()
	d := minimalDeployment(id, e.alice.user, e.private, "sneaky", start)
	content, err := schema.EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	e.waitHead(t, e.commitExternally(t, deploymentPath(e.private, "sneaky"), content, "sneak a deployment onto private\n"))

	got := e.get(t, e.alice, id).expect(t, http.StatusOK).object(t)
	if got["status"] != "error" || !strings.Contains(str(got, "error_message"), "user alice@example.com may not deploy to cluster private") {
		t.Errorf("a deployment on a cluster its owner may not use: status %v, error_message %v", got["status"], got["error_message"])
	}
	e.noCommit(t, func() {
		r := e.patch(t, e.alice, id, map[string]any{"replicas": 3}).expect(t, http.StatusForbidden)
		if d := r.detail(t); !strings.Contains(d, "may not deploy to this deployment's cluster") {
			t.Errorf("PATCH: %q", d)
		}
	})
	if got := e.delete(t, e.alice, id).expect(t, http.StatusAccepted).object(t); got["status"] != "deleting" {
		t.Errorf("DELETE: status %v", got["status"])
	}

	// Access taken away by an operator.
	web := str(e.create(t, e.alice, dockerBody(e.staging, "web")), "id")
	if _, err := e.reg.EnsureCluster(t.Context(), registry.ClusterSpec{Name: "staging", Users: []string{"bob@example.com"}}); err != nil {
		t.Fatal(err)
	}
	got = e.get(t, e.alice, web).expect(t, http.StatusOK).object(t)
	if got["status"] != "error" || !strings.Contains(str(got, "error_message"), "may not deploy to cluster staging") {
		t.Errorf("after access was taken away: status %v, error_message %v", got["status"], got["error_message"])
	}
	e.noCommit(t, func() { e.patch(t, e.alice, web, map[string]any{"replicas": 3}).expect(t, http.StatusForbidden) })
}

// TestDeploymentOwnerNeverChanges: a push that gives Bob's deployment to
// Alice, in place or while moving the file, gives Alice nothing: she
// cannot see it, and Bob sees the last valid version with the error.
func TestDeploymentOwnerNeverChanges(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.bob, dockerBody(e.prod, "bobs"))
	id := str(created, "id")
	path := deploymentPath(e.prod, "bobs")
	content, _ := e.file(t, path)
	stolen := strings.Replace(content, "user_id: "+e.bob.user.ID, "user_id: "+e.alice.user.ID, 1)
	if stolen == content {
		t.Fatalf("no user_id line in\n%s", content)
	}
	e.waitHead(t, e.commitExternally(t, path, []byte(stolen), "take bobs\n"))

	e.get(t, e.alice, id).expect(t, http.StatusNotFound)
	if l := e.list(t, e.alice); len(l) != 0 {
		t.Errorf("Alice lists %d deployments, want none", len(l))
	}
	got := e.get(t, e.bob, id).expect(t, http.StatusOK).object(t)
	if got["status"] != "error" || got["user_id"] != e.bob.user.ID ||
		!strings.Contains(str(got, "error_message"), "metadata.user_id: deployment "+id+" belongs to user "+e.bob.user.ID) {
		t.Errorf("Bob's deployment after the push: status %v, user_id %v, error_message %v", got["status"], got["user_id"], got["error_message"])
	}

	// Moved to another name with the other owner: still not Alice's.
	moved := strings.Replace(stolen, "name: bobs", "name: alices", 1)
	e.waitHead(t, e.commitFilesExternally(t, map[string][]byte{path: nil, deploymentPath(e.prod, "alices"): []byte(moved)}, "move bobs\n"))
	if l := e.list(t, e.alice); len(l) != 0 {
		t.Errorf("after the move Alice lists %v", l)
	}
}
