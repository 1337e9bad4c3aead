package api_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/schema"
)

const openAPIURL = "https://mengi.test/openapi.json"

// openAPIDoc fetches /openapi.json and returns it decoded, and a compiler
// holding it, to compile `#/components/schemas/<name>`.
func openAPIDoc(t *testing.T, e *env) (map[string]any, *jsonschema.Compiler) {
	t.Helper()
	res := e.do(t, req{method: "GET", path: "/openapi.json"}).expect(t, http.StatusOK)
	if !json.Valid(res.body) {
		t.Fatalf("/openapi.json is not valid JSON")
	}
	if !bytes.Equal(res.body, api.OpenAPI()) {
		t.Errorf("/openapi.json differs from api.OpenAPI()")
	}
	var doc map[string]any
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(res.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openAPIURL, inst); err != nil {
		t.Fatal(err)
	}
	return doc, c
}

func compile(t *testing.T, c *jsonschema.Compiler, name string) *jsonschema.Schema {
	t.Helper()
	sch, err := c.Compile(openAPIURL + "#/components/schemas/" + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return sch
}

// validate checks a response body against a schema of the document.
func validate(t *testing.T, sch *jsonschema.Schema, what string, body []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not match its documented schema: %v\n%s", what, err, body)
	}
}

func at(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func sortedKeys(v any) []string {
	m, _ := v.(map[string]any)
	return slices.Sorted(maps.Keys(m))
}

// TestOpenAPIPaths: an OpenAPI 3.1 document describing every path and
// method the server routes, each with the status codes the handler answers,
// and every $ref resolving.
func TestOpenAPIPaths(t *testing.T) {
	e := newEnv(t)
	doc, _ := openAPIDoc(t, e)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
	if at(doc, "info", "title") == nil || at(doc, "info", "version") == nil {
		t.Errorf("info lacks title or version: %v", doc["info"])
	}
	if at(doc, "components", "securitySchemes", "bearer", "scheme") != "bearer" {
		t.Errorf("no bearer security scheme: %v", at(doc, "components", "securitySchemes"))
	}
	// Every operation and the codes it answers (success first).
	want := map[string]map[string][]string{
		"/deployments": {
			"post": {"201", "401", "404", "409", "413", "415", "422"},
			"get":  {"200", "401", "422"},
		},
		"/deployments/{id}": {
			"get":    {"200", "401", "404", "422"},
			"patch":  {"200", "401", "404", "409", "413", "415", "422"},
			"delete": {"202", "401", "404", "422"},
		},
		"/deployments/{id}/history": {
			"get": {"200", "401", "404", "422"},
		},
		"/healthz": {
			"get": {"200"},
		},
		"/keys": {
			"post": {"201", "401", "409", "413", "415", "422"},
			"get":  {"200", "401"},
		},
		"/keys/{id}": {
			"delete": {"204", "401", "404"},
		},
	}
	paths, _ := doc["paths"].(map[string]any)
	if got := sortedKeys(paths); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Errorf("paths %q", got)
	}
	for p, methods := range want {
		if got := sortedKeys(paths[p]); !slices.Equal(got, slices.Sorted(maps.Keys(methods))) {
			t.Errorf("%s: methods %q", p, got)
		}
		for m, codes := range methods {
			responses := sortedKeys(at(paths, p, m, "responses"))
			for _, c := range codes {
				if !slices.Contains(responses, c) {
					t.Errorf("%s %s: response %s is not documented (has %q)", strings.ToUpper(m), p, c, responses)
				}
			}
			if ok := slices.ContainsFunc(responses, func(c string) bool { return c[0] == '2' && c != codes[0] }); ok {
				t.Errorf("%s %s: documents another success than %s: %q", strings.ToUpper(m), p, codes[0], responses)
			}
		}
	}
	if at(paths, "/deployments", "post", "requestBody", "content", "application/json", "schema", "$ref") != "#/components/schemas/DeploymentCreate" ||
		at(paths, "/deployments/{id}", "patch", "requestBody", "content", "application/json", "schema", "$ref") != "#/components/schemas/DeploymentUpdate" {
		t.Errorf("request bodies do not name DeploymentCreate and DeploymentUpdate")
	}

	// The documented routes are the served ones: none answers 404 or 405.
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	for p, methods := range want {
		for m := range methods {
			res := e.do(t, req{method: strings.ToUpper(m), path: strings.ReplaceAll(p, "{id}", id), key: e.alice.key, body: "{}"})
			if res.status == http.StatusNotFound && res.detail(t) == "Not Found" || res.status == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is documented but not routed: %d", strings.ToUpper(m), p, res.status)
			}
		}
	}

	// Every reference points at a schema of the document.
	schemas, _ := at(doc, "components", "schemas").(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch c := v.(type) {
		case map[string]any:
			if r, ok := c["$ref"].(string); ok {
				name, found := strings.CutPrefix(r, "#/components/schemas/")
				if !found || schemas[name] == nil {
					t.Errorf("dangling $ref %q", r)
				}
			}
			for _, x := range c {
				walk(x)
			}
		case []any:
			for _, x := range c {
				walk(x)
			}
		}
	}
	walk(doc)
}

// TestOpenAPIResponseSchemas: DeploymentResponse lists exactly the fields
// the handler returns, and real answers of every kind match their
// documented schemas.
func TestOpenAPIResponseSchemas(t *testing.T) {
	e := newEnv(t)
	doc, c := openAPIDoc(t, e)
	full := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: map[string]any{
		"cluster_id": e.prod.ID, "name": "full", "app_type": "web_app", "docker_image": "nginx:1.27",
		"replicas": 1, "cpu_request": 0.5, "memory_request_mb": 128, "container_port": 80, "run_as_uid": 101,
		"storage_size_gb": 1, "volumes": []any{map[string]any{"path": "/cache", "purpose": "cache"}},
		"environment_variables": []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "B", "secret_ref": "s/k"}},
		"config":                map[string]any{"command": []any{"nginx"}}, "custom_values_yaml": "a: 1\n",
		"image_update_strategy": "semver", "image_update_constraint": "^1", "image_allow_tags": "x", "image_ignore_tags": "y",
	}}).expect(t, http.StatusCreated)

	props := at(doc, "components", "schemas", "DeploymentResponse", "properties")
	got := full.object(t)
	if k, want := sortedKeys(props), sortedKeys(got); !slices.Equal(k, want) {
		t.Errorf("DeploymentResponse properties\n%q\nthe handler returns\n%q", k, want)
	}
	var required []string
	for _, r := range at(doc, "components", "schemas", "DeploymentResponse", "required").([]any) {
		required = append(required, r.(string))
	}
	for _, f := range []string{"id", "user_id", "cluster_id", "name", "app_type", "status", "created_at", "updated_at"} {
		if !slices.Contains(required, f) {
			t.Errorf("%s is not required in DeploymentResponse (required: %q)", f, required)
		}
	}
	// What is declared required is never null in a real answer.
	for _, f := range required {
		if got[f] == nil {
			t.Errorf("required %s is null", f)
		}
	}

	deployment := compile(t, c, "DeploymentResponse")
	history := compile(t, c, "HistoryEntry")
	validationError := compile(t, c, "HTTPValidationError")
	httpError := compile(t, c, "HTTPError")

	validate(t, deployment, "POST 201 (every field set)", full.body)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	helm := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: map[string]any{
		"cluster_id": e.staging.ID, "name": "cache", "deployment_type": "helm",
		"helm_repo_url": "https://charts.example.com", "helm_chart_name": "redis", "helm_chart_version": "1.0.0"}}).
		expect(t, http.StatusCreated)
	validate(t, deployment, "POST 201 (helm)", helm.body)
	validate(t, deployment, "GET", e.get(t, e.alice, id).expect(t, http.StatusOK).body)
	validate(t, deployment, "PATCH", e.patch(t, e.alice, id, map[string]any{"replicas": 2, "volumes": []any{}}).expect(t, http.StatusOK).body)
	validate(t, deployment, "DELETE", e.delete(t, e.alice, id).expect(t, http.StatusAccepted).body)
	for i, d := range e.list(t, e.alice) {
		validate(t, deployment, "list entry "+string(rune('0'+i)), mustJSON(t, d))
	}
	for _, en := range e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusOK).list(t) {
		validate(t, history, "history entry", mustJSON(t, en))
	}
	validate(t, validationError, "422 (body)", e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: `{"x": 1}`}).body)
	validate(t, validationError, "422 (json)", e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: `{`}).body)
	validate(t, validationError, "422 (query)", e.do(t, req{method: "GET", path: "/deployments?limit=0", key: e.alice.key}).body)
	validate(t, httpError, "401", e.do(t, req{method: "GET", path: "/deployments"}).expect(t, http.StatusUnauthorized).body)
	validate(t, httpError, "404", e.get(t, e.bob, id).expect(t, http.StatusNotFound).body)
	validate(t, httpError, "409", e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, "full")}).expect(t, http.StatusConflict).body)

	// The status parameter and the status field share the lifecycle enum.
	var enum []string
	for _, s := range at(doc, "components", "schemas", "status", "enum").([]any) {
		enum = append(enum, s.(string))
	}
	if want := []string{"pending", "provisioning", "promoting", "running", "stopped", "failed", "error", "migrating", "deleting"}; !slices.Equal(enum, want) {
		t.Errorf("status enum %q", enum)
	}
}

// TestOpenAPIRequestSchemas: the request schemas compile with a standard
// JSON Schema validator, have the contract's fields, and whatever they
// refuse the API refuses too.
func TestOpenAPIRequestSchemas(t *testing.T) {
	e := newEnv(t)
	doc, c := openAPIDoc(t, e)
	create := compile(t, c, "DeploymentCreate")
	update := compile(t, c, "DeploymentUpdate")

	createFields := []string{"cluster_id", "name", "app_type", "config", "cpu_request", "memory_request_mb", "replicas",
		"container_port", "environment_variables", "storage_size_gb", "volumes", "run_as_uid", "docker_image",
		"deployment_type", "helm_repo_url", "helm_chart_name", "helm_chart_version", "custom_values_yaml",
		"image_update_strategy", "image_update_constraint", "image_allow_tags", "image_ignore_tags"}
	updateFields := []string{"name", "config", "cpu_request", "memory_request_mb", "replicas", "container_port",
		"storage_size_gb", "environment_variables", "docker_image", "volumes", "helm_chart_version",
		"custom_values_yaml", "image_update_strategy", "image_update_constraint", "image_allow_tags", "image_ignore_tags"}
	if got := sortedKeys(at(doc, "components", "schemas", "DeploymentCreate", "properties")); !slices.Equal(got, slices.Sorted(slices.Values(createFields))) {
		t.Errorf("DeploymentCreate properties %q", got)
	}
	if got := sortedKeys(at(doc, "components", "schemas", "DeploymentUpdate", "properties")); !slices.Equal(got, slices.Sorted(slices.Values(updateFields))) {
		t.Errorf("DeploymentUpdate properties %q", got)
	}
	for _, s := range []string{"DeploymentCreate", "DeploymentUpdate"} {
		if at(doc, "components", "schemas", s, "additionalProperties") != false {
			t.Errorf("%s allows unknown fields", s)
		}
	}
	// The spec's fields are the create body's, in a file.
	if got := slices.Sorted(slices.Values(schema.SpecFields())); !slices.Equal(got, slices.Sorted(slices.Values(createFields))) {
		t.Errorf("spec fields %q", got)
	}

	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	createBodies := []struct {
		body  string
		valid bool // by the schema alone
	}{
		{`{"cluster_id": "` + e.prod.ID + `", "name": "ok", "docker_image": "nginx:1.27"}`, true},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "ok2", "docker_image": "nginx:1.27", "volumes": [{"path": "/d", "sizeGb": 3}], "environment_variables": [{"name": "X", "value": "1"}]}`, true},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "Bad"}`, false},
		{`{"cluster_id": "` + e.prod.ID + `"}`, false},
		{`{"cluster_id": "nope", "name": "x"}`, false},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "x", "extra": 1}`, false},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "x", "replicas": 1001}`, false},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "x", "volumes": [{"path": "/d", "size": 3}]}`, false},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "x", "config": {"unknown": true}}`, false},
		{`{"cluster_id": "` + e.prod.ID + `", "name": "x", "app_type": "lambda"}`, false},
	}
	for _, b := range createBodies {
		checkRequestSchema(t, e, create, b.body, b.valid, req{method: "POST", path: "/deployments", key: e.alice.key}, http.StatusCreated)
	}
	updateBodies := []struct {
		body  string
		valid bool
	}{
		{`{"replicas": 3}`, true},
		{`{"name": "renamed", "docker_image": "nginx:1.28"}`, true},
		{`{"cluster_id": "` + e.staging.ID + `"}`, false},
		{`{"run_as_uid": 1000}`, false},
		{`{"replicas": -1}`, false},
		{`{"name": "-bad-"}`, false},
	}
	for _, b := range updateBodies {
		checkRequestSchema(t, e, update, b.body, b.valid, req{method: "PATCH", path: "/deployments/" + id, key: e.alice.key}, http.StatusOK)
	}
}

// checkRequestSchema checks the schema's verdict on body, then that the API
// answers ok for a valid body and 422 for an invalid one.
func checkRequestSchema(t *testing.T, e *env, sch *jsonschema.Schema, body string, valid bool, r req, ok int) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); (err == nil) != valid {
		t.Errorf("schema on %s: %v, want valid=%v", body, err, valid)
	}
	r.body = body
	want := ok
	if !valid {
		want = http.StatusUnprocessableEntity
	}
	e.do(t, r).expect(t, want)
}
