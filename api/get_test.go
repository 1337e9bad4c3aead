package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/schema"
)

// TestGetOwn: GET returns what POST returned, whatever the case of the id.
func TestGetOwn(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.alice, dockerBody(e.prod, "web", "replicas", 2,
		"environment_variables", []any{map[string]any{"name": "A", "value": "1"}}))
	id := str(created, "id")
	for _, path := range []string{id, strings.ToUpper(id)} {
		got := e.get(t, e.alice, path).expect(t, http.StatusOK).object(t)
		checkKeys(t, got)
		checkFields(t, got, created)
	}
}

// TestGetNotFound: another user's deployment answers exactly like one that
// does not exist.
func TestGetNotFound(t *testing.T) {
	e := newEnv(t)
	bobs := str(e.create(t, e.bob, dockerBody(e.private, "secret")), "id")
	cases := []struct {
		name string
		who  account
		id   string
	}{
		{"another user's deployment", e.alice, bobs},
		{"another user's deployment, upper case", e.alice, strings.ToUpper(bobs)},
		{"random uuid", e.alice, uuid.NewString()},
		{"a cluster's id", e.alice, e.prod.ID},
		{"a user's id", e.alice, e.alice.user.ID},
	}
	// An id that is not a UUID is a 422 at ["path", "id"], as in FastAPI.
	for _, bad := range []string{"web", "0193a8a0-0000-7000-8000-00000000000", "0193a8a0-0000-7000-8000-00000000000g"} {
		res := e.get(t, e.alice, bad).expect(t, http.StatusUnprocessableEntity)
		if d := res.object(t)["detail"].([]any)[0].(map[string]any); d["type"] != "uuid_parsing" || fmt.Sprint(d["loc"]) != "[path id]" {
			t.Errorf("GET %s: %v", bad, d)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.get(t, c.who, c.id).expect(t, http.StatusNotFound)
			if d := res.detail(t); d != "Deployment not found" {
				t.Errorf("detail %q", d)
			}
		})
	}
	// The owner does see it.
	e.get(t, e.bob, bobs).expect(t, http.StatusOK)
}

// TestGetSameAfterRestart: what the API answers from the record it just
// wrote is what it answers after a restart, when it reads the file back;
// values chosen to be awkward in YAML.
func TestGetSameAfterRestart(t *testing.T) {
	e := newEnv(t)
	awkward := []string{"yes", "no", "on", "off", "y", "n", "true", "123", "0x1F", "0o17", "1e3", ".5", "null", "~", "",
		" leading space", "trailing space ", "trailing\n", "multi\nline\n", "\nleading newline", "two\n\n\ntrailing\n\n",
		"tab\tchar", "cr\r\nlf", "unicode ✓ ü 日本", "#comment", "- dash", ": colon", "a: b", "'quote", "\"dq", "{a: b}", "[1]",
		"&anchor", "*alias", "!tag", "%pct", "@at", "`bt", "2025-01-01", "12:30:00", "<<", "=", "---", "...", `back\slash`}
	var envs []any
	for i, v := range awkward {
		envs = append(envs, map[string]any{"name": "V" + string(rune('A'+i%26)) + strings.Repeat("_", i/26), "value": v})
	}
	bodies := []map[string]any{
		dockerBody(e.prod, "awkward", "environment_variables", envs,
			"config", map[string]any{"args": []any{"--x=1", "yes", "", "multi\nline"}, "command": []any{}, "health_check_path": "/h?x=1#y", "ingress": false},
			"image_update_strategy", "digest", "image_allow_tags", `regexp:^v[0-9]+\.[0-9]+$`, "image_ignore_tags", "latest, *-rc",
			"cpu_request", 0.001, "memory_request_mb", 1<<20, "replicas", 0, "container_port", 65535, "storage_size_gb", 1,
			"volumes", []any{map[string]any{"path": "/a", "purpose": ""}, map[string]any{"path": "/b/c-d_e", "sizeGb": 65536, "purpose": "yes"}}),
		dockerBody(e.prod, strings.Repeat("x", 53), "docker_image", "registry.example.com:5000/org/app-name_x@sha256:"+strings.Repeat("ab", 32),
			"cpu_request", 1024, "run_as_uid", 1, "custom_values_yaml", ""),
		{"cluster_id": e.staging.ID, "name": "values-crlf", "deployment_type": "helm", "helm_repo_url": "http://charts.example.com/a%20b",
			"helm_chart_name": "x", "helm_chart_version": "v1.2.3-rc.1+build.5", "custom_values_yaml": "a: 1\r\nb: 2\r\n"},
		{"cluster_id": e.staging.ID, "name": "values-lead", "deployment_type": "helm", "helm_repo_url": "oci://r.example.com/c",
			"helm_chart_name": "y", "helm_chart_version": "0.0.1", "custom_values_yaml": "\n\nkey: value\n\n\n"},
		{"cluster_id": e.staging.ID, "name": "values-plain", "deployment_type": "helm", "helm_repo_url": "https://r.example.com",
			"helm_chart_name": "z", "helm_chart_version": "1.0.0", "custom_values_yaml": "# only a comment\nkey: [1, 2]   \n  "},
	}
	var created []map[string]any
	for _, b := range bodies {
		res := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: b})
		if res.status != http.StatusCreated {
			t.Errorf("POST %s: %d %s", b["name"], res.status, res.body)
			continue
		}
		created = append(created, res.object(t))
	}
	// Strings a YAML 1.1 reader would take for booleans are quoted.
	if content, ok := e.file(t, deploymentPath(e.prod, "awkward")); ok {
		for _, v := range []string{"yes", "no", "on", "off", "y", "n", "true"} {
			if !strings.Contains(content, "value: \""+v+"\"\n") {
				t.Errorf("%q is not quoted in the file:\n%s", v, content)
			}
		}
	}
	before := e.list(t, e.alice)
	if len(before) != len(created) {
		t.Fatalf("listed %d, created %d", len(before), len(created))
	}
	for i := range created {
		checkFields(t, before[i], created[i])
		// The file says the same as the response, field by field.
		content, _ := e.file(t, str(created[i], "git_path"))
		parsed, errs := schema.ParseFile([]byte(content))
		if errs != nil {
			t.Errorf("%s: ParseFile: %v", str(created[i], "git_path"), errs)
			continue
		}
		spec := jsonValue(t, parsed.Spec).(map[string]any)
		for k, v := range spec {
			if k == "volumes" || k == "environment_variables" {
				continue // the response adds the unset keys as null
			}
			if !equalJSON(t, v, created[i][k]) {
				t.Errorf("%s: file has %s = %s, response %s", str(created[i], "name"), k, mustJSON(t, v), mustJSON(t, created[i][k]))
			}
		}
	}
	e.reopen(t)
	after := e.list(t, e.alice)
	if len(after) != len(before) {
		t.Fatalf("after a restart alice lists %d, before %d", len(after), len(before))
	}
	for i := range before {
		for _, k := range responseFields {
			if !equalJSON(t, after[i][k], before[i][k]) {
				t.Errorf("%s: %s is %s after a restart, %s before", str(before[i], "name"), k, mustJSON(t, after[i][k]), mustJSON(t, before[i][k]))
			}
		}
	}
}
