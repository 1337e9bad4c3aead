package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/schema"
)

// TestUpdateReplicas changes one field: one commit listing the change, the
// file rewritten, updated_at moved, created_at kept.
func TestUpdateReplicas(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.alice, dockerBody(e.prod, "web", "replicas", 1))
	id := str(created, "id")
	later := e.clock.Advance(90 * time.Second)

	res := e.do(t, req{method: "PATCH", path: "/deployments/" + id, key: e.alice.key,
		body: map[string]any{"replicas": 3}, requestID: "req-scale"}).expect(t, http.StatusOK)
	if res.header.Get("X-Request-Id") != "req-scale" {
		t.Errorf("X-Request-Id %q", res.header.Get("X-Request-Id"))
	}
	got := res.object(t)
	checkKeys(t, got)
	want := map[string]any{}
	for k, v := range created {
		want[k] = v
	}
	want["replicas"], want["updated_at"], want["status"] = 3, rfc3339(later), "pending"
	checkFields(t, got, want)

	path := deploymentPath(e.prod, "web")
	e.assertCommits(t, e.setupCommits+2)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/web: update replicas", deploymentID: id, requestID: "req-scale",
		bodyLines: []string{"replicas: 1 -> 3"}, files: []string{path},
	})
	if body := e.commit(t, "main").Body; body != "replicas: 1 -> 3" {
		t.Errorf("body %q lists more than the change", body)
	}
	d := minimalDeployment(id, e.alice.user, e.prod, "web", start)
	d.Spec.Replicas, d.Metadata.UpdatedAt = ptr[int64](3), later
	e.checkFile(t, path, d)
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), want)
}

// TestUpdateSeveralFields sets and clears several fields in one request:
// still one commit, whose subject lists the fields in API order and whose
// body has one line per field.
func TestUpdateSeveralFields(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web", "memory_request_mb", 512, "container_port", 80)), "id")
	later := e.clock.Advance(time.Hour)
	values := "resources:\n  limits:\n    cpu: 1\n"
	got := e.patch(t, e.alice, id, map[string]any{
		"custom_values_yaml":    values,
		"replicas":              2,
		"cpu_request":           0.5,
		"docker_image":          "nginx:1.28",
		"memory_request_mb":     nil,
		"container_port":        80, // unchanged: not listed
		"environment_variables": []any{map[string]any{"name": "A", "value": "1"}},
		"image_allow_tags":      "regexp:^1\\.",
	}).expect(t, http.StatusOK).object(t)
	checkFields(t, got, map[string]any{
		"docker_image": "nginx:1.28", "replicas": 2, "cpu_request": 0.5, "memory_request_mb": nil,
		"container_port": 80, "custom_values_yaml": values, "image_allow_tags": "regexp:^1\\.",
		"environment_variables": []any{map[string]any{"name": "A", "value": "1", "secret_ref": nil}},
		"updated_at":            rfc3339(later), "created_at": rfc3339(start),
	})
	path := deploymentPath(e.prod, "web")
	e.assertCommits(t, e.setupCommits+2)
	e.checkCommit(t, "main", wantCommit{
		user:         e.alice.user,
		subject:      "deployment prod/web: update docker_image, replicas, cpu_request, memory_request_mb, environment_variables, custom_values_yaml, image_allow_tags",
		deploymentID: str(got, "id"),
		bodyLines: []string{
			"docker_image: nginx:1.27 -> nginx:1.28",
			"replicas: null -> 2",
			"cpu_request: null -> 0.5",
			"memory_request_mb: 512 -> null",
			`environment_variables: null -> [{"name":"A","value":"1"}]`,
			"custom_values_yaml: changed",
			`image_allow_tags: null -> regexp:^1\.`,
		},
		files: []string{path},
	})
	d := minimalDeployment(id, e.alice.user, e.prod, "web", start)
	d.Metadata.UpdatedAt = later
	d.Spec.DockerImage, d.Spec.Replicas, d.Spec.CPURequest = ptr("nginx:1.28"), ptr[int64](2), ptr(0.5)
	d.Spec.ContainerPort, d.Spec.CustomValuesYAML, d.Spec.ImageAllowTags = ptr[int64](80), ptr(values), ptr("regexp:^1\\.")
	d.Spec.EnvironmentVariables = []schema.EnvironmentVariable{{Name: "A", Value: ptr("1")}}
	e.checkFile(t, path, d)
}

// TestUpdateRename moves the file: the old path is gone and the new one is
// there, in one commit; the old name is free again.
func TestUpdateRename(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	later := e.clock.Advance(time.Minute)
	oldPath, newPath := deploymentPath(e.prod, "web"), deploymentPath(e.prod, "frontend")

	got := e.patch(t, e.alice, id, map[string]any{"name": "frontend"}).expect(t, http.StatusOK).object(t)
	checkFields(t, got, map[string]any{"id": id, "name": "frontend", "git_path": newPath, "updated_at": rfc3339(later)})
	e.assertCommits(t, e.setupCommits+2)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/frontend: update name", deploymentID: id,
		bodyLines: []string{"name: web -> frontend"}, files: []string{oldPath, newPath},
	})
	if _, there := e.file(t, oldPath); there {
		t.Errorf("%s is still there after the rename", oldPath)
	}
	d := minimalDeployment(id, e.alice.user, e.prod, "frontend", start)
	d.Metadata.UpdatedAt = later
	e.checkFile(t, newPath, d)
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), got)

	// The old name can be used again, by anyone.
	e.create(t, e.bob, dockerBody(e.prod, "web"))
	// Renaming and changing another field at once is still one commit.
	got = e.patch(t, e.alice, id, map[string]any{"name": "site", "replicas": 4}).expect(t, http.StatusOK).object(t)
	checkFields(t, got, map[string]any{"name": "site", "replicas": 4, "git_path": deploymentPath(e.prod, "site")})
	e.assertCommits(t, e.setupCommits+4)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/site: update name, replicas", deploymentID: id,
		bodyLines: []string{"name: frontend -> site", "replicas: null -> 4"},
		files:     []string{newPath, deploymentPath(e.prod, "site")},
	})
}

// TestUpdateRenameConflict: a name taken on the cluster (by anyone) answers
// 409 and nothing changes; a name used only on another cluster is free.
func TestUpdateRenameConflict(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	e.create(t, e.alice, dockerBody(e.prod, "api"))
	e.create(t, e.bob, dockerBody(e.prod, "bobs"))
	e.create(t, e.alice, dockerBody(e.staging, "admin"))
	for _, name := range []string{"api", "bobs"} {
		e.noCommit(t, func() {
			res := e.patch(t, e.alice, id, map[string]any{"name": name, "replicas": 2}).expect(t, http.StatusConflict)
			if d := res.detail(t); d != "A deployment named '"+name+"' already exists on this cluster" {
				t.Errorf("detail %q", d)
			}
		})
	}
	e.checkFile(t, deploymentPath(e.prod, "web"), minimalDeployment(id, e.alice.user, e.prod, "web", start))
	e.patch(t, e.alice, id, map[string]any{"name": "admin"}).expect(t, http.StatusOK)
}

// TestUpdateFixedFields: the fields fixed at creation are refused with
// extra_forbidden saying so, and nothing is committed.
func TestUpdateFixedFields(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web", "run_as_uid", 1000)), "id")
	cases := []struct {
		field string
		value any
		why   string
	}{
		{"cluster_id", e.staging.ID, "cluster_id is fixed at creation (use promote to copy a deployment to another cluster)"},
		{"app_type", "api", "app_type is fixed at creation"},
		{"deployment_type", "helm", "deployment_type is fixed at creation"},
		{"helm_repo_url", "https://charts.example.com", "helm_repo_url is fixed at creation"},
		{"helm_chart_name", "redis", "helm_chart_name is fixed at creation"},
		{"run_as_uid", 2000, "run_as_uid is fixed at creation"},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			e.noCommit(t, func() {
				errs := e.patch(t, e.alice, id, map[string]any{c.field: c.value, "replicas": 5}).validationErrors(t)
				if len(errs) != 1 {
					t.Fatalf("%d entries: %+v", len(errs), errs)
				}
				g := errs[0]
				if g.Type != "extra_forbidden" || fmtLoc(g.Loc) != fmtLoc(L("body", c.field)) ||
					g.Msg != "Extra inputs are not permitted: "+c.why || !equalJSON(t, g.Input, c.value) {
					t.Errorf("got %+v", g)
				}
			})
		})
	}
	// Even a value equal to the current one is refused: the field is not
	// part of the update model.
	e.noCommit(t, func() {
		e.patch(t, e.alice, id, map[string]any{"cluster_id": e.prod.ID}).validationErrors(t)
	})
	got := e.get(t, e.alice, id).expect(t, http.StatusOK).object(t)
	checkFields(t, got, map[string]any{"replicas": nil, "run_as_uid": 1000, "cluster_id": e.prod.ID})
}

// TestUpdateNoChange: a PATCH that changes nothing answers 200 with the
// deployment as it is, and makes no commit.
func TestUpdateNoChange(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.alice, dockerBody(e.prod, "web", "replicas", 1, "container_port", 8080, "config", map[string]any{"ingress": true}))
	id := str(created, "id")
	e.clock.Advance(time.Hour)
	for _, body := range []string{
		`{}`,
		`{"replicas": 1}`,
		`{"replicas": 1.0}`,
		`{"docker_image": "nginx:1.27", "name": "web"}`,
		`{"volumes": null, "environment_variables": null}`,
		`{"volumes": [], "environment_variables": []}`,
		`{"config": {"ingress": true}}`,
		`{"storage_size_gb": null}`,
	} {
		t.Run(body, func(t *testing.T) {
			e.noCommit(t, func() {
				got := e.patch(t, e.alice, id, body).expect(t, http.StatusOK).object(t)
				checkFields(t, got, created) // updated_at included
			})
		})
	}
}

// TestUpdateInvalid: bodies that fail validation, or leave the deployment
// inconsistent, answer 422 and commit nothing.
func TestUpdateInvalid(t *testing.T) {
	e := newEnv(t)
	docker := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	helm := str(e.create(t, e.alice, map[string]any{"cluster_id": e.prod.ID, "name": "cache", "deployment_type": "helm",
		"helm_repo_url": "https://charts.bitnami.com/bitnami", "helm_chart_name": "redis", "helm_chart_version": "18.1.0"}), "id")
	cases := []struct {
		name, id, body, typ string
		loc                 []any
		msg                 string
	}{
		{"clear docker_image", docker, `{"docker_image": null}`, "missing", L("body", "docker_image"), "Field required when deployment_type is 'docker'"},
		{"chart version on docker", docker, `{"helm_chart_version": "1.0.0"}`, "value_error", L("body", "helm_chart_version"), "only used when deployment_type is 'helm'"},
		{"clear chart version", helm, `{"helm_chart_version": null}`, "missing", L("body", "helm_chart_version"), "Field required when deployment_type is 'helm'"},
		{"image on helm", helm, `{"docker_image": "nginx:1.27"}`, "value_error", L("body", "docker_image"), "only used when deployment_type is 'docker'"},
		{"bad name", docker, `{"name": "Web"}`, "string_pattern_mismatch", L("body", "name"), "DNS label"},
		{"null name", docker, `{"name": null}`, "string_type", L("body", "name"), "valid string"},
		{"bad type", docker, `{"replicas": "x"}`, "int_type", L("body", "replicas"), "valid integer"},
		{"unknown field", docker, `{"replica": 2}`, "extra_forbidden", L("body", "replica"), "Extra inputs are not permitted"},
		{"malformed JSON", docker, `{"replicas": }`, "json_invalid", L("body", 13), "JSON decode error"},
		{"not an object", docker, `"replicas"`, "model_attributes_type", L("body"), "valid dictionary"},
		{"volume clash with storage", docker, `{"storage_size_gb": 1, "volumes": [{"path": "/data"}]}`, "value_error", L("body", "volumes", 0, "path"), "already used"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.noCommit(t, func() {
				errs := e.patch(t, e.alice, c.id, c.body).validationErrors(t)
				if len(errs) != 1 {
					t.Fatalf("%d entries: %+v", len(errs), errs)
				}
				if g := errs[0]; g.Type != c.typ || fmtLoc(g.Loc) != fmtLoc(c.loc) || !strings.Contains(g.Msg, c.msg) {
					t.Errorf("got {%s %v %q}, want {%s %v ~%q}", g.Type, g.Loc, g.Msg, c.typ, c.loc, c.msg)
				}
			})
		})
	}
	e.checkFile(t, deploymentPath(e.prod, "web"), minimalDeployment(docker, e.alice.user, e.prod, "web", start))
}

// TestUpdateNotFound: someone else's deployment and a missing one answer
// 404, and nothing is committed.
func TestUpdateNotFound(t *testing.T) {
	e := newEnv(t)
	bobs := str(e.create(t, e.bob, dockerBody(e.prod, "web")), "id")
	for _, id := range []string{bobs, uuid.NewString()} {
		e.noCommit(t, func() {
			res := e.patch(t, e.alice, id, map[string]any{"replicas": 2}).expect(t, http.StatusNotFound)
			if d := res.detail(t); d != "Deployment not found" {
				t.Errorf("detail %q", d)
			}
		})
	}
	checkFields(t, e.get(t, e.bob, bobs).expect(t, http.StatusOK).object(t), map[string]any{"replicas": nil})
}

func equalJSON(t *testing.T, a, b any) bool {
	return string(mustJSON(t, jsonValue(t, a))) == string(mustJSON(t, jsonValue(t, b)))
}

// TestUpdateClearWithEmpty: setting a list or object to empty clears it,
// exactly like null: one commit, and null on every read, before and after a
// restart.
func TestUpdateClearWithEmpty(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web",
		"volumes", []any{map[string]any{"path": "/cache", "sizeGb": 1}},
		"environment_variables", []any{map[string]any{"name": "A", "value": "1"}},
		"config", map[string]any{"ingress": false})), "id")
	later := e.clock.Advance(time.Minute)
	got := e.patch(t, e.alice, id, `{"volumes": [], "environment_variables": [], "config": {}}`).expect(t, http.StatusOK).object(t)
	empty := map[string]any{"config": nil, "volumes": nil, "environment_variables": nil}
	checkFields(t, got, empty)
	e.assertCommits(t, e.setupCommits+2)
	e.checkCommit(t, "main", wantCommit{user: e.alice.user, subject: "deployment prod/web: update volumes, environment_variables, config",
		deploymentID: id, bodyLines: []string{
			`volumes: [{"path":"/cache","sizeGb":1}] -> null`,
			`environment_variables: [{"name":"A","value":"1"}] -> null`,
			`config: {"ingress":false} -> null`,
		}})
	d := minimalDeployment(id, e.alice.user, e.prod, "web", start)
	d.Metadata.UpdatedAt = later
	e.checkFile(t, deploymentPath(e.prod, "web"), d)
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), empty)
	e.reopen(t)
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), empty)
}

// TestUpdateAfterAgentStatus: the agent commits a status to the file with
// git alone; the API's next write takes that commit in, builds on it,
// keeps the status block (now pending, since the spec changed), and the
// history lists the agent's commit too.
func TestUpdateAfterAgentStatus(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web", "replicas", 1)), "id")
	path := deploymentPath(e.prod, "web")
	content, _ := e.file(t, path)
	d, errs := schema.ParseFile([]byte(content))
	if errs != nil {
		t.Fatal(errs)
	}
	applied := start.Add(time.Minute)
	d.Status = &schema.Status{Phase: schema.PhaseRunning, EndpointURL: "https://web.apps.example.com",
		ValuesYAML: "replicaCount: 1\n", SpecDigest: d.Spec.Digest(), AppliedAt: &applied, UpdatedAt: &applied}
	withStatus, err := schema.EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	agent := e.commitExternally(t, path, withStatus, "status prod/web: running\n")

	later := e.clock.Advance(time.Hour)
	got := e.patch(t, e.alice, id, map[string]any{"replicas": 2}).expect(t, http.StatusOK).object(t)
	checkFields(t, got, map[string]any{"replicas": 2, "status": "pending",
		"endpoint_url": "https://web.apps.example.com", "values_yaml": "replicaCount: 1\n"})
	e.assertCommits(t, e.setupCommits+3)
	c := e.checkCommit(t, "main", wantCommit{user: e.alice.user, subject: "deployment prod/web: update replicas",
		deploymentID: id, bodyLines: []string{"replicas: 1 -> 2"}, files: []string{path}})
	if c.Parents != agent {
		t.Errorf("the API's commit has parents %q, want the agent's %s", c.Parents, agent)
	}
	d.Spec.Replicas, d.Metadata.UpdatedAt = ptr[int64](2), later
	e.checkFile(t, path, d)

	hist := e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusOK).list(t)
	var shas []string
	for _, h := range hist {
		shas = append(shas, str(h, "sha"))
	}
	if want := strings.Fields(e.git(t, "log", "--format=%H", "main", "--", path)); !slices.Equal(shas, want) {
		t.Errorf("history %q, git log %q", shas, want)
	}
	if len(hist) == 3 && (str(hist[1], "sha") != agent || str(hist[1], "author") != "Mengi agent") {
		t.Errorf("history[1] = %v, want the agent's commit %s", hist[1], agent)
	}

	// Once the agent has applied the new spec, the deployment is running.
	d.Status.SpecDigest = d.Spec.Digest()
	applied2, _ := schema.EncodeFile(d)
	e.commitExternally(t, path, applied2, "status prod/web: running\n")
	// A write of another deployment takes the agent's commit in.
	e.create(t, e.alice, dockerBody(e.prod, "other"))
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), map[string]any{"status": "running", "replicas": 2})
}
