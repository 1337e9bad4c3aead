package api_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// TestCreateDockerFull posts a docker deployment with every kind of field
// and checks the 201, the one commit and the file it wrote.
func TestCreateDockerFull(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{
		// Mengi's own example sends the cluster id in upper case.
		"cluster_id":        strings.ToUpper(e.prod.ID),
		"name":              "shop-api",
		"app_type":          "api",
		"docker_image":      "ghcr.io/shop/api:v1.2.3",
		"replicas":          2,
		"cpu_request":       0.25,
		"memory_request_mb": 256,
		"container_port":    8080,
		"run_as_uid":        1000,
		"storage_size_gb":   5,
		"volumes": []any{
			map[string]any{"path": "/cache", "sizeGb": 2, "purpose": "cache"},
			map[string]any{"path": "/uploads"},
		},
		"environment_variables": []any{
			map[string]any{"name": "LOG_LEVEL", "value": "info"},
			map[string]any{"name": "DB_PASSWORD", "secret_ref": "shop-db/password"},
		},
		"config":                  map[string]any{"health_check_path": "/healthz", "ingress": true},
		"image_update_strategy":   "semver",
		"image_update_constraint": "~1.2",
	}
	res := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: body, requestID: "req-create-1"}).expect(t, http.StatusCreated)
	if got := res.header.Get("X-Request-Id"); got != "req-create-1" {
		t.Errorf("X-Request-Id %q, want it echoed", got)
	}
	got := res.object(t)
	checkKeys(t, got)

	id := str(got, "id")
	if u, err := uuid.Parse(id); err != nil || u.String() != id || u.Version() != 7 {
		t.Fatalf("id %q is not a lowercase UUIDv7", id)
	}
	path := deploymentPath(e.prod, "shop-api")
	checkFields(t, got, map[string]any{
		"user_id": e.alice.user.ID, "cluster_id": e.prod.ID, "name": "shop-api", "app_type": "api",
		"status": "pending", "git_path": path, "deployment_type": "docker",
		"docker_image": "ghcr.io/shop/api:v1.2.3", "replicas": 2, "cpu_request": 0.25,
		"memory_request_mb": 256, "container_port": 8080, "run_as_uid": 1000, "storage_size_gb": 5,
		"volumes": []any{
			map[string]any{"path": "/cache", "sizeGb": 2, "purpose": "cache"},
			map[string]any{"path": "/uploads", "sizeGb": 10, "purpose": nil},
		},
		"environment_variables": []any{
			map[string]any{"name": "LOG_LEVEL", "value": "info", "secret_ref": nil},
			map[string]any{"name": "DB_PASSWORD", "value": nil, "secret_ref": "shop-db/password"},
		},
		"config":                  map[string]any{"health_check_path": "/healthz", "ingress": true},
		"image_update_strategy":   "semver",
		"image_update_constraint": "~1.2",
		"image_allow_tags":        nil, "image_ignore_tags": nil,
		"helm_repo_url": nil, "helm_chart_name": nil, "helm_chart_version": nil, "custom_values_yaml": nil,
		"values_yaml": nil, "endpoint_url": nil, "error_message": nil,
		"is_adopted": false, "source_namespace": nil,
		"created_at": rfc3339(start), "updated_at": rfc3339(start),
		"provider": "hetzner", "region": "fsn1", "cluster_status": nil, "cluster_error": nil,
	})

	e.assertCommits(t, e.setupCommits+1)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/shop-api: create", deploymentID: id, requestID: "req-create-1",
		bodyLines: []string{"app_type: api", "deployment_type: docker", "docker_image: ghcr.io/shop/api:v1.2.3", "replicas: 2"},
		files:     []string{path},
	})
	e.checkFile(t, path, &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: id, UserID: e.alice.user.ID, CreatedAt: start, UpdatedAt: start},
		Spec: schema.Spec{
			ClusterID: e.prod.ID, Name: "shop-api", AppType: schema.AppAPI, DeploymentType: schema.TypeDocker,
			DockerImage: ptr("ghcr.io/shop/api:v1.2.3"), Replicas: ptr[int64](2), CPURequest: ptr(0.25),
			MemoryRequestMB: ptr[int64](256), ContainerPort: ptr[int64](8080), RunAsUID: ptr[int64](1000),
			StorageSizeGB: ptr[int64](5),
			Volumes: []schema.Volume{
				{Path: "/cache", SizeGb: 2, Purpose: ptr("cache")},
				{Path: "/uploads", SizeGb: 10},
			},
			EnvironmentVariables: []schema.EnvironmentVariable{
				{Name: "LOG_LEVEL", Value: ptr("info")},
				{Name: "DB_PASSWORD", SecretRef: ptr("shop-db/password")},
			},
			Config:                map[string]any{"health_check_path": "/healthz", "ingress": true},
			ImageUpdateStrategy:   ptr("semver"),
			ImageUpdateConstraint: ptr("~1.2"),
		},
	})

	// What was created reads back the same.
	again := e.get(t, e.alice, id).expect(t, http.StatusOK).object(t)
	checkFields(t, again, got)
}

// TestCreateDefaults checks the defaults (app_type helm, deployment_type
// docker) and that every optional field is present as null.
func TestCreateDefaults(t *testing.T) {
	e := newEnv(t)
	got := e.create(t, e.alice, map[string]any{"cluster_id": e.staging.ID, "name": "web", "docker_image": "nginx:1.27"})
	checkKeys(t, got)
	want := map[string]any{
		"cluster_id": e.staging.ID, "name": "web", "app_type": "helm", "deployment_type": "docker",
		"status": "pending", "docker_image": "nginx:1.27", "git_path": deploymentPath(e.staging, "web"),
		"is_adopted": false, "created_at": rfc3339(start), "updated_at": rfc3339(start),
	}
	for _, f := range responseFields {
		if _, set := want[f]; !set && f != "id" && f != "user_id" {
			want[f] = nil
		}
	}
	checkFields(t, got, want)
	e.assertCommits(t, e.setupCommits+1)
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment staging/web: create", deploymentID: str(got, "id"),
		bodyLines: []string{"app_type: helm", "deployment_type: docker", "docker_image: nginx:1.27"},
		files:     []string{deploymentPath(e.staging, "web")},
	})
	e.checkFile(t, deploymentPath(e.staging, "web"), &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: str(got, "id"), UserID: e.alice.user.ID, CreatedAt: start, UpdatedAt: start},
		Spec: schema.Spec{ClusterID: e.staging.ID, Name: "web", AppType: schema.AppHelm,
			DeploymentType: schema.TypeDocker, DockerImage: ptr("nginx:1.27")},
	})
}

// TestCreateHelm creates a Helm deployment with multi-line custom values.
func TestCreateHelm(t *testing.T) {
	e := newEnv(t)
	values := "architecture: standalone\nauth:\n  enabled: false\n"
	got := e.create(t, e.alice, map[string]any{
		"cluster_id": e.prod.ID, "name": "cache", "deployment_type": "helm",
		"helm_repo_url": "oci://registry-1.docker.io/bitnamicharts", "helm_chart_name": "redis",
		"helm_chart_version": "18.1.0", "custom_values_yaml": values, "replicas": 1,
	})
	checkFields(t, got, map[string]any{
		"app_type": "helm", "deployment_type": "helm", "docker_image": nil,
		"helm_repo_url": "oci://registry-1.docker.io/bitnamicharts", "helm_chart_name": "redis",
		"helm_chart_version": "18.1.0", "custom_values_yaml": values, "replicas": 1,
	})
	path := deploymentPath(e.prod, "cache")
	e.checkCommit(t, "main", wantCommit{
		user: e.alice.user, subject: "deployment prod/cache: create", deploymentID: str(got, "id"),
		bodyLines: []string{"app_type: helm", "deployment_type: helm",
			"helm chart: redis 18.1.0 from oci://registry-1.docker.io/bitnamicharts", "replicas: 1"},
		files: []string{path},
	})
	e.checkFile(t, path, &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: str(got, "id"), UserID: e.alice.user.ID, CreatedAt: start, UpdatedAt: start},
		Spec: schema.Spec{ClusterID: e.prod.ID, Name: "cache", AppType: schema.AppHelm, DeploymentType: schema.TypeHelm,
			Replicas: ptr[int64](1), HelmRepoURL: ptr("oci://registry-1.docker.io/bitnamicharts"),
			HelmChartName: ptr("redis"), HelmChartVersion: ptr("18.1.0"), CustomValuesYAML: ptr(values)},
	})
	if content, _ := e.file(t, path); !strings.Contains(content, "custom_values_yaml: |") {
		t.Errorf("multi-line custom_values_yaml is not a literal block:\n%s", content)
	}
}

// TestCreateValidation posts invalid bodies: each answers 422 with the
// expected entries, and nothing is committed.
func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	type entry struct {
		typ string
		loc []any
		msg string // a substring of msg
	}
	cases := []struct {
		name string
		body string
		want []entry
	}{
		{"empty object", `{}`, []entry{
			{"missing", L("body", "cluster_id"), "Field required"},
			{"missing", L("body", "name"), "Field required"},
			{"missing", L("body", "docker_image"), "Field required when deployment_type is 'docker'"},
		}},
		{"not an object", `[]`, []entry{{"model_attributes_type", L("body"), "valid dictionary"}}},
		{"malformed JSON", `{"name": "x",`, []entry{{"json_invalid", L("body", 13), "JSON decode error"}}},
		{"empty body", ``, []entry{{"json_invalid", L("body", 0), "JSON decode error"}}},
		{"trailing data", `{"name": "x"} {}`, []entry{{"json_invalid", L("body", 14), "JSON decode error"}}},
		{"bad cluster id", dockerJSON(t, map[string]any{"cluster_id": "not-a-uuid"}), []entry{
			{"uuid_parsing", L("body", "cluster_id"), "valid UUID"}}},
		{"bad name", dockerJSON(t, map[string]any{"name": "Shop_API"}), []entry{
			{"string_pattern_mismatch", L("body", "name"), "DNS label"}}},
		{"name too long", dockerJSON(t, map[string]any{"name": strings.Repeat("a", 54)}), []entry{
			{"string_too_long", L("body", "name"), "at most 53 characters"}}},
		{"unknown field", dockerJSON(t, map[string]any{"replica": 3}), []entry{
			{"extra_forbidden", L("body", "replica"), "Extra inputs are not permitted"}}},
		{"wrong types", dockerJSON(t, map[string]any{"replicas": "three", "cpu_request": "lots", "docker_image": 5}), []entry{
			{"string_type", L("body", "docker_image"), "valid string"},
			{"int_type", L("body", "replicas"), "valid integer"},
			{"float_type", L("body", "cpu_request"), "valid number"},
		}},
		{"bad enum", dockerJSON(t, map[string]any{"app_type": "lambda"}), []entry{
			{"enum", L("body", "app_type"), "'web_app'"}}},
		{"root", dockerJSON(t, map[string]any{"run_as_uid": 0}), []entry{
			{"greater_than_equal", L("body", "run_as_uid"), "root"}}},
		{"port range", dockerJSON(t, map[string]any{"container_port": 70000}), []entry{
			{"less_than_equal", L("body", "container_port"), "65535"}}},
		{"docker without image", `{"cluster_id": "` + e.prod.ID + `", "name": "web"}`, []entry{
			{"missing", L("body", "docker_image"), "Field required when deployment_type is 'docker'"}}},
		{"helm without chart", `{"cluster_id": "` + e.prod.ID + `", "name": "web", "deployment_type": "helm"}`, []entry{
			{"missing", L("body", "helm_repo_url"), "deployment_type is 'helm'"},
			{"missing", L("body", "helm_chart_name"), "deployment_type is 'helm'"},
			{"missing", L("body", "helm_chart_version"), "deployment_type is 'helm'"},
		}},
		{"relative volume path", dockerJSON(t, map[string]any{"volumes": []any{map[string]any{"path": "data"}}}), []entry{
			{"string_pattern_mismatch", L("body", "volumes", 0, "path"), "absolute path"}}},
		{"env value and secret_ref", dockerJSON(t, map[string]any{"environment_variables": []any{
			map[string]any{"name": "A", "value": "1", "secret_ref": "s/k"}}}), []entry{
			{"value_error", L("body", "environment_variables", 0), "exactly one of value or secret_ref"}}},
		{"duplicate env names", dockerJSON(t, map[string]any{"environment_variables": []any{
			map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "A", "value": "2"}}}), []entry{
			{"value_error", L("body", "environment_variables", 1, "name"), "duplicate environment variable name 'A'"}}},
		{"values not a mapping", dockerJSON(t, map[string]any{"custom_values_yaml": "- a\n- b\n"}), []entry{
			{"value_error", L("body", "custom_values_yaml"), "YAML mapping"}}},
		{"several problems", `{"cluster_id": "` + e.prod.ID + `", "name": "-x-", "replicas": -1, "bogus": 1, "docker_image": "nginx"}`, []entry{
			{"string_pattern_mismatch", L("body", "name"), "DNS label"},
			{"greater_than_equal", L("body", "replicas"), "greater than or equal to 0"},
			{"extra_forbidden", L("body", "bogus"), "Extra inputs"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.noCommit(t, func() {
				res := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: c.body})
				got := res.validationErrors(t)
				if len(got) != len(c.want) {
					t.Fatalf("%d entries, want %d: %s", len(got), len(c.want), res.body)
				}
				for i, w := range c.want {
					g := got[i]
					if g.Type != w.typ || fmtLoc(g.Loc) != fmtLoc(w.loc) || !strings.Contains(g.Msg, w.msg) {
						t.Errorf("entry %d = {%s %v %q}, want {%s %v ~%q}", i, g.Type, g.Loc, g.Msg, w.typ, w.loc, w.msg)
					}
				}
			})
		})
	}
}

// dockerJSON is a valid docker body on a fixed (unknown) cluster with the
// given fields set; validation runs before the cluster is looked up.
func dockerJSON(t *testing.T, set map[string]any) string {
	m := map[string]any{"cluster_id": "7b0cbd4e-5f0f-4d37-9d38-d2f5e3b9a1c2", "name": "web", "docker_image": "nginx:1.27"}
	for k, v := range set {
		m[k] = v
	}
	return string(mustJSON(t, m))
}

// TestCreateClusterAccess: an unknown cluster and a cluster the user may not
// use both answer 404, and commit nothing; the allowed user may deploy.
func TestCreateClusterAccess(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name    string
		who     account
		cluster string
		status  int
	}{
		{"unknown cluster", e.alice, uuid.NewString(), http.StatusNotFound},
		{"restricted cluster", e.alice, e.private.ID, http.StatusNotFound},
		{"restricted cluster, upper case id", e.alice, strings.ToUpper(e.private.ID), http.StatusNotFound},
		{"a user's id is not a cluster", e.alice, e.alice.user.ID, http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.noCommit(t, func() {
				res := e.do(t, req{method: "POST", path: "/deployments", key: c.who.key,
					body: map[string]any{"cluster_id": c.cluster, "name": "web", "docker_image": "nginx:1.27"}})
				res.expect(t, c.status)
				if d := res.detail(t); d != "Cluster not found" {
					t.Errorf("detail %q", d)
				}
			})
		})
	}
	// Bob is on the private cluster's list.
	got := e.create(t, e.bob, dockerBody(e.private, "web"))
	checkFields(t, got, map[string]any{"cluster_id": e.private.ID, "user_id": e.bob.user.ID})
	e.assertCommits(t, e.setupCommits+1)
	e.checkCommit(t, "main", wantCommit{user: e.bob.user, subject: "deployment private/web: create",
		deploymentID: str(got, "id"), files: []string{deploymentPath(e.private, "web")}})
}

// TestCreateDuplicateName: a name is unique per cluster (whoever owns the
// other deployment); the same name on another cluster is fine.
func TestCreateDuplicateName(t *testing.T) {
	e := newEnv(t)
	first := e.create(t, e.alice, dockerBody(e.prod, "web"))
	for _, who := range []account{e.alice, e.bob} {
		e.noCommit(t, func() {
			res := e.do(t, req{method: "POST", path: "/deployments", key: who.key,
				body: dockerBody(e.prod, "web", "docker_image", "httpd:2.4")})
			res.expect(t, http.StatusConflict)
			if d := res.detail(t); d != "A deployment named 'web' already exists on this cluster" {
				t.Errorf("detail %q", d)
			}
		})
	}
	// The upper-case spelling of the cluster is the same cluster.
	e.noCommit(t, func() {
		e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key,
			body: map[string]any{"cluster_id": strings.ToUpper(e.prod.ID), "name": "web", "docker_image": "nginx:1.27"}}).
			expect(t, http.StatusConflict)
	})
	second := e.create(t, e.alice, dockerBody(e.staging, "web"))
	if str(second, "id") == str(first, "id") {
		t.Fatal("two deployments share an id")
	}
	e.assertCommits(t, e.setupCommits+2)
	// The first one is untouched.
	e.checkFile(t, deploymentPath(e.prod, "web"), &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: str(first, "id"), UserID: e.alice.user.ID, CreatedAt: start, UpdatedAt: start},
		Spec: schema.Spec{ClusterID: e.prod.ID, Name: "web", AppType: schema.AppHelm,
			DeploymentType: schema.TypeDocker, DockerImage: ptr("nginx:1.27")},
	})
}

// TestCreateRequestID: the X-Request-Id sent is echoed and becomes the
// commit's Request-Id trailer; without one the server makes one up and uses
// it the same way.
func TestCreateRequestID(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, "a"), requestID: "client-7f3a"}).
		expect(t, http.StatusCreated)
	if got := res.header.Get("X-Request-Id"); got != "client-7f3a" {
		t.Errorf("X-Request-Id %q", got)
	}
	e.checkCommit(t, "main", wantCommit{user: e.alice.user, subject: "deployment prod/a: create",
		deploymentID: str(res.object(t), "id"), requestID: "client-7f3a"})

	res = e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, "b")}).
		expect(t, http.StatusCreated)
	generated := res.header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(generated) {
		t.Errorf("generated X-Request-Id %q", generated)
	}
	e.checkCommit(t, "main", wantCommit{user: e.alice.user, subject: "deployment prod/b: create",
		deploymentID: str(res.object(t), "id"), requestID: generated})
}

// TestCreateEmptyCollections: an empty config, volumes or
// environment_variables (Mengi's own example sends `"config": {}`) is the
// same as none: the file leaves it out, and every read, before and after a
// restart, answers null.
func TestCreateEmptyCollections(t *testing.T) {
	e := newEnv(t)
	body := dockerBody(e.prod, "web", "config", map[string]any{}, "volumes", []any{}, "environment_variables", []any{})
	empty := map[string]any{"config": nil, "volumes": nil, "environment_variables": nil}
	got := e.create(t, e.alice, body)
	checkFields(t, got, empty)
	id := str(got, "id")
	e.checkFile(t, deploymentPath(e.prod, "web"), minimalDeployment(id, e.alice.user, e.prod, "web", start))
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), empty)
	e.reopen(t)
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), empty)
}

// TestCreateClusterAccessEmailCase: the registry treats emails without
// regard to case (a key added for "Carol@Example.com" goes to the user
// "carol@example.com"), so a cluster listing that user's email in another
// case must let her deploy.
func TestCreateClusterAccessEmailCase(t *testing.T) {
	e := newEnv(t)
	carol, user := addUser(t, e, "Carol@Example.com")
	again, same, err := e.reg.AddKey(context.Background(), "Carol", "carol@example.com")
	if err != nil || same.ID != user.ID {
		t.Fatalf("the registry made a second user for carol@example.com: %v", err)
	}
	c, err := e.reg.AddCluster(context.Background(), registry.ClusterSpec{Name: "carols", Users: []string{"carol@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []account{carol, {key: again, user: same}} {
		res := e.do(t, req{method: "POST", path: "/deployments", key: a.key, body: dockerBody(c, "web")})
		if res.status != http.StatusCreated && res.status != http.StatusConflict {
			t.Errorf("carol may not deploy to the cluster listing her: %d %s", res.status, res.body)
		}
	}
}
