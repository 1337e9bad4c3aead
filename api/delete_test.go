package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestDelete: 202 with status deleting; the file stays, marked with
// metadata.deletion_requested_at, in one commit; a second DELETE changes
// nothing.
func TestDelete(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.alice, dockerBody(e.prod, "web", "replicas", 2))
	id := str(created, "id")
	when := e.clock.Advance(10 * time.Minute)

	res := e.do(t, req{method: "DELETE", path: "/deployments/" + id, key: e.alice.key, requestID: "req-del"}).
		expect(t, http.StatusAccepted)
	if res.header.Get("X-Request-Id") != "req-del" {
		t.Errorf("X-Request-Id %q", res.header.Get("X-Request-Id"))
	}
	got := res.object(t)
	checkKeys(t, got)
	want := map[string]any{}
	for k, v := range created {
		want[k] = v
	}
	want["status"], want["updated_at"] = "deleting", rfc3339(when)
	checkFields(t, got, want)

	path := deploymentPath(e.prod, "web")
	e.assertCommits(t, e.setupCommits+2)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/web: delete", deploymentID: id, requestID: "req-del",
		files: []string{path},
	})
	d := minimalDeployment(id, e.alice.user, e.prod, "web", start)
	d.Spec.Replicas = ptr[int64](2)
	d.Metadata.UpdatedAt, d.Metadata.DeletionRequestedAt = when, &when
	e.checkFile(t, path, d)

	// GET and the listing show it as deleting until the agent removes it.
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), want)

	// Asking again is accepted and changes nothing, not even the time.
	e.clock.Advance(time.Minute)
	e.noCommit(t, func() {
		again := e.delete(t, e.alice, id).expect(t, http.StatusAccepted).object(t)
		checkFields(t, again, want)
	})
	e.checkFile(t, path, d)
}

// TestDeleteThenPatch: a deployment being deleted can no longer be changed.
func TestDeleteThenPatch(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	e.delete(t, e.alice, id).expect(t, http.StatusAccepted)
	for _, body := range []string{`{"replicas": 3}`, `{"name": "other"}`, `{}`} {
		e.noCommit(t, func() {
			res := e.patch(t, e.alice, id, body).expect(t, http.StatusConflict)
			if d := res.detail(t); d != "Deployment is being deleted" {
				t.Errorf("detail %q", d)
			}
		})
	}
	// Its name stays taken until the file is gone.
	e.noCommit(t, func() {
		e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, "web")}).
			expect(t, http.StatusConflict)
	})
}

// TestDeleteNotFound: someone else's deployment and a missing one answer
// 404, and nothing is committed.
func TestDeleteNotFound(t *testing.T) {
	e := newEnv(t)
	bobs := str(e.create(t, e.bob, dockerBody(e.prod, "web")), "id")
	for _, id := range []string{bobs, uuid.NewString()} {
		e.noCommit(t, func() {
			res := e.delete(t, e.alice, id).expect(t, http.StatusNotFound)
			if d := res.detail(t); d != "Deployment not found" {
				t.Errorf("detail %q", d)
			}
		})
	}
	checkFields(t, e.get(t, e.bob, bobs).expect(t, http.StatusOK).object(t), map[string]any{"status": "pending"})
}
