package schema

import (
	"strings"
	"testing"
)

// baseFile is a valid deployment file; the comments are its line numbers.
const baseFile = `# Mengi GitOps deployment.
apiVersion: mengi.cloud/v1
kind: Deployment
metadata:
  id: 3f1c2b9a-6d4e-4f8a-9b2c-1a2b3c4d5e6f
  user_id: 7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b
  created_at: "2025-01-02T03:04:05Z"
  updated_at: 2025-01-03T04:05:06Z
spec:
  cluster_id: 2489e9ad-2ee2-8e00-8ec9-32d5f69181c0
  name: web
  app_type: web_app
  docker_image: nginx:1.27
  replicas: 2
  volumes:
    - path: /data
      sizeGb: 5
  environment_variables:
    - name: A
      value: "1"
status:
  phase: running
`

// fileWith returns baseFile with each old string replaced by the new one
// that follows it.
func fileWith(t *testing.T, oldNew ...string) string {
	t.Helper()
	s := baseFile
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("baseFile lacks %q", oldNew[i])
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return s
}

// FE is an expected problem of a file: an E and its line.
type FE struct {
	E
	Line int
}

func fe(line int, typ string, l []any, msg string, ctx map[string]any) FE {
	return FE{e(typ, l, msg, ctx), line}
}

func checkFileErrs(t *testing.T, got Errors, want []FE) {
	t.Helper()
	es := make([]E, len(want))
	for i, w := range want {
		es[i] = w.E
	}
	checkErrs(t, got, es)
	if len(got) != len(want) {
		return
	}
	for i, w := range want {
		if got[i].Line != w.Line {
			t.Errorf("error %d (%s at %s): line %d, want %d", i, got[i].Type, jsonString(got[i].Loc), got[i].Line, w.Line)
		}
	}
}

func TestParseFileValid(t *testing.T) {
	d, errs := ParseFile([]byte(baseFile))
	checkInvariants(t, d != nil, errs, "")
	if errs != nil {
		t.Fatal(dumpErrs(errs))
	}
	if d.APIVersion != APIVersion || d.Kind != KindDeployment || d.Metadata.ID != testID || d.Metadata.UserID != testUserID ||
		!d.Metadata.CreatedAt.Equal(testCreated) || !d.Metadata.UpdatedAt.Equal(testUpdated) {
		t.Errorf("metadata: %s", jsonString(d))
	}
	if d.Spec.Name != "web" || *d.Spec.Replicas != 2 || d.Spec.Volumes[0].SizeGb != 5 || *d.Spec.EnvironmentVariables[0].Value != "1" {
		t.Errorf("spec: %s", jsonString(d.Spec))
	}
	if d.Status == nil || d.Status.Phase != PhaseRunning {
		t.Errorf("status: %s", jsonString(d.Status))
	}
}

func TestParseFileDefaults(t *testing.T) {
	d, errs := ParseFile([]byte(fileWith(t, "  app_type: web_app\n", "", "      sizeGb: 5\n", "", "status:\n  phase: running\n", "",
		"2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0")))
	if errs != nil {
		t.Fatal(dumpErrs(errs))
	}
	if d.Spec.AppType != AppHelm || d.Spec.DeploymentType != TypeDocker || d.Spec.Volumes[0].SizeGb != DefaultVolumeSizeGb ||
		d.Status != nil || d.Spec.ClusterID != testClusterID || d.Phase() != PhasePending {
		t.Errorf("got %s", jsonString(d))
	}
}

func TestParseFileYAMLForms(t *testing.T) {
	cases := []struct {
		name   string
		oldNew []string
		check  func(d *Deployment) bool
	}{
		{"hex integer", []string{"replicas: 2", "replicas: 0x10"}, func(d *Deployment) bool { return *d.Spec.Replicas == 16 }},
		{"integral float", []string{"replicas: 2", "replicas: 2.0"}, func(d *Deployment) bool { return *d.Spec.Replicas == 2 }},
		{"big integral float", []string{"replicas: 2", "replicas: 2\n  memory_request_mb: 1000000.0"},
			func(d *Deployment) bool { return *d.Spec.MemoryRequestMB == 1000000 }},
		{"exponent", []string{"replicas: 2", "replicas: 2\n  memory_request_mb: 1.024e3"}, func(d *Deployment) bool { return *d.Spec.MemoryRequestMB == 1024 }},
		{"underscores", []string{"replicas: 2", "replicas: 2\n  memory_request_mb: 1_024"}, func(d *Deployment) bool { return *d.Spec.MemoryRequestMB == 1024 }},
		{"cpu as integer", []string{"replicas: 2", "replicas: 2\n  cpu_request: 2"}, func(d *Deployment) bool { return *d.Spec.CPURequest == 2 }},
		{"flow style", []string{"  environment_variables:\n    - name: A\n      value: \"1\"\n", "  environment_variables: [{name: A, value: \"1\"}]\n"},
			func(d *Deployment) bool { return d.Spec.EnvironmentVariables[0].Name == "A" }},
		{"single quotes", []string{"name: web", "name: 'web'"}, func(d *Deployment) bool { return d.Spec.Name == "web" }},
		{"custom tag is a string", []string{"name: web", "name: !label web"}, func(d *Deployment) bool { return d.Spec.Name == "web" }},
		{"explicit null", []string{"replicas: 2", "replicas: ~"}, func(d *Deployment) bool { return d.Spec.Replicas == nil }},
		{"block literal", []string{"replicas: 2", "replicas: 2\n  custom_values_yaml: |\n    a: 1\n    b: [2]\n"},
			func(d *Deployment) bool { return *d.Spec.CustomValuesYAML == "a: 1\nb: [2]\n" }},
		{"anchor without alias", []string{"name: web", "name: &n web"}, func(d *Deployment) bool { return d.Spec.Name == "web" }},
		{"document markers", []string{"# Mengi GitOps deployment.\n", "---\n", "  phase: running\n", "  phase: running\n...\n"},
			func(d *Deployment) bool { return d.Spec.Name == "web" }},
		{"config ingress boolean", []string{"replicas: 2", "replicas: 2\n  config:\n    ingress: false"},
			func(d *Deployment) bool { return d.Spec.Config["ingress"] == false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, errs := ParseFile([]byte(fileWith(t, c.oldNew...)))
			checkInvariants(t, d != nil, errs, "")
			if errs != nil {
				t.Fatal(dumpErrs(errs))
			}
			if !c.check(d) {
				t.Errorf("got %s", jsonString(d.Spec))
			}
		})
	}
	// JSON is YAML: a file may be written as JSON.
	data, _ := EncodeFile(fileFixtures()["docker-full"])
	d, _ := ParseFile(data)
	if _, errs := ParseFile([]byte(jsonString(d))); errs != nil {
		t.Errorf("JSON file: %s", dumpErrs(errs))
	}
}

func TestParseFileErrors(t *testing.T) {
	phases := "'pending', 'provisioning', 'promoting', 'running', 'stopped', 'failed', 'error', 'migrating' or 'deleting'"
	uuid5 := map[string]any{"error": "must have 5 elements"}
	cases := []struct {
		name   string
		oldNew []string
		want   []FE
	}{
		{"replicas word", []string{"replicas: 2", "replicas: two"}, []FE{{typeErr("int_type", L("spec", "replicas")), 14}}},
		{"replicas quoted", []string{"replicas: 2", `replicas: "2"`}, []FE{{typeErr("int_type", L("spec", "replicas")), 14}}},
		{"replicas fraction", []string{"replicas: 2", "replicas: 1.5"}, []FE{{typeErr("int_from_float", L("spec", "replicas")), 14}}},
		{"replicas bound", []string{"replicas: 2", "replicas: -1"}, []FE{{geErr(L("spec", "replicas"), 0), 14}}},
		{"replicas beyond int64", []string{"replicas: 2", "replicas: 99999999999999999999"}, []FE{{leErr(L("spec", "replicas"), 1000), 14}}},
		{"name pattern", []string{"name: web", "name: Web"}, []FE{{patternErr(L("spec", "name"), msgName, namePattern), 11}}},
		{"name missing", []string{"  name: web\n", ""}, []FE{fe(9, "missing", L("spec", "name"), msgMissing, nil)}},
		{"docker_image missing", []string{"  docker_image: nginx:1.27\n", ""}, []FE{
			fe(9, "missing", L("spec", "docker_image"), "Field required when deployment_type is 'docker'", nil)}},
		{"unknown spec key", []string{"  replicas: 2\n", "  replicas: 2\n  replica: 3\n"}, []FE{fe(15, "extra_forbidden", L("spec", "replica"), msgExtra, nil)}},
		{"unknown top key", []string{"status:", "extra: 1\nstatus:"}, []FE{fe(21, "extra_forbidden", L("extra"), msgExtra, nil)}},
		{"volume path", []string{"path: /data", "path: data"}, []FE{{patternErr(L("spec", "volumes", 0, "path"), msgAbsPath, pathPattern), 16}}},
		{"volume sizeGb", []string{"sizeGb: 5", "sizeGb: 0"}, []FE{{geErr(L("spec", "volumes", 0, "sizeGb"), 1), 17}}},
		{"volume unclean", []string{"path: /data", "path: /data/"}, []FE{fe(16, "value_error", L("spec", "volumes", 0, "path"),
			"Value error, path should be clean: no '.', '..', '//' or trailing '/' (did you mean '/data'?)", nil)}},
		{"env without value", []string{"      value: \"1\"\n", ""}, []FE{fe(19, "value_error", L("spec", "environment_variables", 0),
			"Value error, set exactly one of value or secret_ref", nil)}},
		{"env duplicate", []string{"      value: \"1\"\n", "      value: \"1\"\n    - name: A\n      value: \"2\"\n"}, []FE{
			fe(21, "value_error", L("spec", "environment_variables", 1, "name"), "Value error, duplicate environment variable name 'A' (first at index 0)", nil)}},
		{"metadata id", []string{"id: 3f1c2b9a-6d4e-4f8a-9b2c-1a2b3c4d5e6f", "id: 42"}, []FE{fe(5, "string_type", L("metadata", "id"), msgString, nil)}},
		{"metadata user_id", []string{"user_id: 7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "user_id: me"}, []FE{
			fe(6, "uuid_parsing", L("metadata", "user_id"), "Input should be a valid UUID, must have 5 elements", uuid5)}},
		{"created_at word", []string{`created_at: "2025-01-02T03:04:05Z"`, "created_at: yesterday"}, []FE{fe(7, "datetime_parsing", L("metadata", "created_at"),
			"Input should be a valid datetime in RFC 3339 format, expected YYYY-MM-DDTHH:MM:SS, optional fraction, then Z or an offset such as +02:00", nil)}},
		{"created_at month", []string{`created_at: "2025-01-02T03:04:05Z"`, "created_at: 2025-13-02T03:04:05Z"}, []FE{fe(7, "datetime_parsing", L("metadata", "created_at"),
			"Input should be a valid datetime in RFC 3339 format, month out of range", nil)}},
		{"created_at leap second", []string{`created_at: "2025-01-02T03:04:05Z"`, "created_at: 2016-12-31T23:59:60Z"}, []FE{fe(7, "datetime_parsing", L("metadata", "created_at"),
			"Input should be a valid datetime in RFC 3339 format, second out of range", nil)}},
		{"created_at date only", []string{`created_at: "2025-01-02T03:04:05Z"`, "created_at: 2025-01-02"}, []FE{fe(7, "datetime_parsing", L("metadata", "created_at"),
			"Input should be a valid datetime in RFC 3339 format, expected YYYY-MM-DDTHH:MM:SS, optional fraction, then Z or an offset such as +02:00", nil)}},
		{"created_at missing", []string{"  created_at: \"2025-01-02T03:04:05Z\"\n", ""}, []FE{fe(4, "missing", L("metadata", "created_at"), msgMissing, nil)}},
		{"apiVersion", []string{"mengi.cloud/v1", "mengi.cloud/v2"}, []FE{fe(2, "literal_error", L("apiVersion"), "Input should be 'mengi.cloud/v1'", map[string]any{"expected": "'mengi.cloud/v1'"})}},
		{"kind", []string{"kind: Deployment", "kind: Cluster"}, []FE{fe(3, "literal_error", L("kind"), "Input should be 'Deployment'", map[string]any{"expected": "'Deployment'"})}},
		{"kind missing", []string{"kind: Deployment\n", ""}, []FE{fe(2, "missing", L("kind"), msgMissing, nil)}},
		{"status phase", []string{"phase: running", "phase: done"}, []FE{fe(22, "enum", L("status", "phase"), "Input should be "+phases, map[string]any{"expected": phases})}},
		{"status without phase", []string{"phase: running", "reason: x"}, []FE{fe(21, "missing", L("status", "phase"), msgMissing, nil)}},
		{"status commit", []string{"phase: running", "phase: running\n  applied_commit: abc"}, []FE{{patternErr(L("status", "applied_commit"),
			"String should be a full 40-character commit hash", "^[0-9a-f]{40}$"), 23}}},
		{"status reason", []string{"phase: running", "phase: running\n  reason: " + strings.Repeat("r", 65)}, []FE{{tooLong(L("status", "reason"), 64), 23}}},
		{"several, in order", []string{"kind: Deployment", "kind: X", "name: web", "name: -web", "path: /data", "path: /", "phase: running", "phase: x"}, []FE{
			fe(3, "literal_error", L("kind"), "Input should be 'Deployment'", map[string]any{"expected": "'Deployment'"}),
			{patternErr(L("spec", "name"), msgName, namePattern), 11},
			fe(16, "value_error", L("spec", "volumes", 0, "path"), "Value error, a volume cannot be mounted at '/'", nil),
			fe(22, "enum", L("status", "phase"), "Input should be "+phases, map[string]any{"expected": phases}),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, errs := ParseFile([]byte(fileWith(t, c.oldNew...)))
			checkInvariants(t, d != nil, errs, "")
			checkFileErrs(t, errs, c.want)
		})
	}
}

func TestParseFileYAMLErrors(t *testing.T) {
	cases := []struct {
		name string
		data string
		want FE
	}{
		{"empty", "", fe(1, "yaml_invalid", nil, "YAML error: the file holds no document", nil)},
		{"comments only", "# nothing\n# here\n", fe(1, "yaml_invalid", nil, "YAML error: the file holds no document", nil)},
		{"duplicate key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  name: web2\n"),
			fe(15, "yaml_invalid", L("spec", "name"), `YAML error: key "name" appears twice`, nil)},
		{"duplicate top key", baseFile + "kind: Deployment\n",
			fe(23, "yaml_invalid", L("kind"), `YAML error: key "kind" appears twice`, nil)},
		{"duplicate nested key", fileWith(t, "      sizeGb: 5\n", "      sizeGb: 5\n      path: /x\n"),
			fe(18, "yaml_invalid", L("spec", "volumes", 0, "path"), `YAML error: key "path" appears twice`, nil)},
		{"second document", baseFile + "---\nkind: Deployment\n",
			fe(23, "yaml_invalid", nil, "YAML error: a deployment file holds one document; found a second '---'", nil)},
		// yaml.v3 reports a syntax error at the line (counted from 0) where
		// the construct around it starts.
		{"broken second document", baseFile + "---\n: : [\n",
			fe(23, "yaml_invalid", nil, "YAML error: did not find expected key", nil)},
		{"empty second document", baseFile + "---\n",
			fe(23, "yaml_invalid", nil, "YAML error: a deployment file holds one document; found a second '---'", nil)},
		{"alias", fileWith(t, "name: web", "name: &n web", "  replicas: 2\n", "  replicas: 2\n  image_update_strategy: *n\n"),
			fe(15, "yaml_invalid", L("spec", "image_update_strategy"), "YAML error: aliases ('*n') are not supported; write the value out", nil)},
		{"merge key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  <<: {cpu_request: 1}\n"),
			fe(15, "yaml_invalid", L("spec"), "YAML error: merge keys ('<<') are not supported", nil)},
		{"integer key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  1: x\n"),
			fe(15, "yaml_invalid", L("spec"), `YAML error: keys should be strings, found "1"`, nil)},
		{"boolean key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  true: x\n"),
			fe(15, "yaml_invalid", L("spec"), `YAML error: keys should be strings, found "true"`, nil)},
		{"null key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  ~: x\n"),
			fe(15, "yaml_invalid", L("spec"), `YAML error: keys should be strings, found "~"`, nil)},
		{"list key", fileWith(t, "  replicas: 2\n", "  replicas: 2\n  ? [a]\n  : x\n"),
			fe(15, "yaml_invalid", L("spec"), "YAML error: keys should be strings, found a list", nil)},
		{"infinity", fileWith(t, "replicas: 2", "cpu_request: .inf"),
			fe(14, "yaml_invalid", L("spec", "cpu_request"), "YAML error: .inf is not a finite number", nil)},
		{"minus infinity", fileWith(t, "replicas: 2", "cpu_request: -.Inf"),
			fe(14, "yaml_invalid", L("spec", "cpu_request"), "YAML error: -.Inf is not a finite number", nil)},
		{"not a number", fileWith(t, "sizeGb: 5", "sizeGb: .NaN"),
			fe(17, "yaml_invalid", L("spec", "volumes", 0, "sizeGb"), "YAML error: .NaN is not a finite number", nil)},
		{"overflowing float", fileWith(t, "replicas: 2", "cpu_request: 1.0e999"),
			fe(14, "float_type", L("spec", "cpu_request"), msgFloat, nil)}, // YAML reads it as a string
		{"tab indentation", fileWith(t, "  replicas: 2\n", "\treplicas: 2\n"),
			fe(13, "yaml_invalid", nil, "YAML error: found a tab character that violates indentation", nil)},
		{"bad indentation", fileWith(t, "  replicas: 2\n", "   replicas: 2\n"),
			fe(14, "yaml_invalid", nil, "YAML error: mapping values are not allowed in this context", nil)},
		{"unclosed quote", fileWith(t, "name: web", `name: "web`),
			fe(9, "yaml_invalid", nil, "YAML error: did not find expected key", nil)},
		{"not a mapping", "- a\n- b\n", fe(1, "model_attributes_type", []any{}, msgModel, nil)},
		{"scalar", "web\n", fe(1, "model_attributes_type", []any{}, msgModel, nil)},
		{"null document", "---\n", fe(1, "yaml_invalid", nil, "YAML error: the document is empty", nil)},
		{"null document with comment", "# x\n---\n# y\n", fe(1, "yaml_invalid", nil, "YAML error: the document is empty", nil)},
		{"explicit null document", "null\n", fe(1, "model_attributes_type", []any{}, msgModel, nil)},
		{"spec a string", fileWith(t, "spec:\n  cluster_id", "spec: web\nspec2:\n  cluster_id"),
			fe(9, "model_attributes_type", L("spec"), msgModel, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, errs := ParseFile([]byte(c.data))
			checkInvariants(t, d != nil, errs, "")
			if c.name == "spec a string" && len(errs) > 0 {
				errs = errs[:1] // spec2 is also an unknown key
			}
			checkFileErrs(t, errs, []FE{c.want})
		})
	}
}
