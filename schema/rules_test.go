package schema

import (
	"fmt"
	"strings"
	"testing"
)

func envs(entries ...map[string]any) []any {
	out := make([]any, len(entries))
	for i, en := range entries {
		out[i] = en
	}
	return out
}

type m = map[string]any

func TestRulesEnvironmentVariables(t *testing.T) {
	one := "set exactly one of value or secret_ref"
	runCreate(t, []createCase{
		{"value", docker("environment_variables", envs(m{"name": "A", "value": "1"})), nil},
		{"empty value", docker("environment_variables", envs(m{"name": "A", "value": ""})), nil},
		{"secret_ref", docker("environment_variables", envs(m{"name": "A", "secret_ref": "db/password"})), nil},
		{"value and null secret_ref", docker("environment_variables", envs(m{"name": "A", "value": "1", "secret_ref": nil})), nil},
		{"neither", docker("environment_variables", envs(m{"name": "A"})), []E{
			{Type: "value_error", Loc: b("environment_variables", 0), Msg: "Value error, " + one, Input: nil}}},
		{"both null", docker("environment_variables", envs(m{"name": "A", "value": nil, "secret_ref": nil})), []E{
			valueErr(b("environment_variables", 0), one)}},
		{"both", docker("environment_variables", envs(m{"name": "A", "value": "1", "secret_ref": "db/password"})), []E{
			valueErr(b("environment_variables", 0), one)}},
		{"duplicate", docker("environment_variables", envs(m{"name": "A", "value": "1"}, m{"name": "B", "value": "2"}, m{"name": "A", "secret_ref": "s/k"})), []E{
			{Type: "value_error", Loc: b("environment_variables", 2, "name"), Msg: "Value error, duplicate environment variable name 'A' (first at index 0)", Input: "A"}}},
		{"three times", docker("environment_variables", envs(m{"name": "A", "value": "1"}, m{"name": "A", "value": "2"}, m{"name": "A", "value": "3"})), []E{
			valueErr(b("environment_variables", 1, "name"), "duplicate environment variable name 'A' (first at index 0)"),
			valueErr(b("environment_variables", 2, "name"), "duplicate environment variable name 'A' (first at index 0)"),
		}},
		// Names are case-sensitive, as in Kubernetes.
		{"case differs", docker("environment_variables", envs(m{"name": "a", "value": "1"}, m{"name": "A", "value": "2"})), nil},
		// A duplicate without a value is two problems, both reported.
		{"duplicate and neither", docker("environment_variables", envs(m{"name": "A", "value": "1"}, m{"name": "A"})), []E{
			valueErr(b("environment_variables", 1), one),
			valueErr(b("environment_variables", 1, "name"), "duplicate environment variable name 'A' (first at index 0)"),
		}},
		// When the schema refused part of an entry, the entry's own rule is
		// not guessed at.
		{"bad secret_ref and value", docker("environment_variables", envs(m{"name": "A", "value": "1", "secret_ref": "bad"})), []E{
			patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"missing name", docker("environment_variables", envs(m{})), []E{
			e("missing", b("environment_variables", 0, "name"), msgMissing, nil)}},
		{"bad name is not a duplicate", docker("environment_variables", envs(m{"name": "1A", "value": "1"}, m{"name": "1A", "value": "2"})), []E{
			patternErr(b("environment_variables", 0, "name"), msgEnvName, envNamePattern),
			patternErr(b("environment_variables", 1, "name"), msgEnvName, envNamePattern),
		}},
	})
}

func TestRulesVolumes(t *testing.T) {
	vols := func(paths ...string) []any {
		out := make([]any, len(paths))
		for i, p := range paths {
			out[i] = m{"path": p}
		}
		return out
	}
	clean := func(i int, p, want string) E {
		return E{Type: "value_error", Loc: b("volumes", i, "path"),
			Msg: fmt.Sprintf("Value error, path should be clean: no '.', '..', '//' or trailing '/' (did you mean '%s'?)", want), Input: p}
	}
	storage := "storage_size_gb's volume (config.storage_mount_path)"
	runCreate(t, []createCase{
		{"distinct", docker("volumes", vols("/a", "/b", "/a/b", "/var/lib/x")), nil},
		{"root", docker("volumes", vols("/")), []E{{Type: "value_error", Loc: b("volumes", 0, "path"), Msg: "Value error, a volume cannot be mounted at '/'", Input: "/"}}},
		{"trailing slash", docker("volumes", vols("/data/")), []E{clean(0, "/data/", "/data")}},
		{"double slash", docker("volumes", vols("//data")), []E{clean(0, "//data", "/data")}},
		{"dot", docker("volumes", vols("/a/./b")), []E{clean(0, "/a/./b", "/a/b")}},
		{"dot dot", docker("volumes", vols("/a/../b")), []E{clean(0, "/a/../b", "/b")}},
		{"dot dot to root", docker("volumes", vols("/..")), []E{clean(0, "/..", "/")}},
		{"duplicate", docker("volumes", vols("/a", "/b", "/a")), []E{
			{Type: "value_error", Loc: b("volumes", 2, "path"), Msg: "Value error, path '/a' is already used by volumes[0]", Input: "/a"}}},
		{"duplicate twice", docker("volumes", vols("/a", "/a", "/a")), []E{
			valueErr(b("volumes", 1, "path"), "path '/a' is already used by volumes[0]"),
			valueErr(b("volumes", 2, "path"), "path '/a' is already used by volumes[0]"),
		}},
		// An unclean path is reported as such, not also as a duplicate.
		{"unclean duplicate", docker("volumes", vols("/a", "/a/")), []E{clean(1, "/a/", "/a")}},
		{"storage default mount", docker("storage_size_gb", 5, "volumes", vols("/data")), []E{
			valueErr(b("volumes", 0, "path"), "path '/data' is already used by "+storage)}},
		{"no storage, /data is free", docker("volumes", vols("/data")), nil},
		{"storage elsewhere", docker("storage_size_gb", 5, "config", m{"storage_mount_path": "/var/lib/db"}, "volumes", vols("/data")), nil},
		{"storage moved onto a volume", docker("storage_size_gb", 5, "config", m{"storage_mount_path": "/var/lib/db"}, "volumes", vols("/data", "/var/lib/db")), []E{
			valueErr(b("volumes", 1, "path"), "path '/var/lib/db' is already used by "+storage)}},
		{"storage path unclean", docker("storage_size_gb", 5, "config", m{"storage_mount_path": "/var/lib/db/"}, "volumes", vols("/var/lib/db")), []E{
			valueErr(b("volumes", 0, "path"), "path '/var/lib/db' is already used by "+storage),
			{Type: "value_error", Loc: b("config", "storage_mount_path"), Input: "/var/lib/db/",
				Msg: "Value error, path should be clean: no '.', '..', '//' or trailing '/' (did you mean '/var/lib/db'?)"},
		}},
		{"storage at root", docker("storage_size_gb", 5, "config", m{"storage_mount_path": "/"}), []E{
			valueErr(b("config", "storage_mount_path"), "storage cannot be mounted at '/'")}},
		{"bad path is not a duplicate", docker("volumes", vols("data", "data")), []E{
			patternErr(b("volumes", 0, "path"), msgAbsPath, pathPattern),
			patternErr(b("volumes", 1, "path"), msgAbsPath, pathPattern),
		}},
		{"entry of wrong type", docker("volumes", []any{"/a", m{"path": "/a"}}), []E{
			typeErr("model_attributes_type", b("volumes", 0))}},
	})
	s := mustCreate(t, docker("volumes", []any{m{"path": "/a", "purpose": "uploads"}, m{"path": "/b", "sizeGb": 1, "purpose": nil}}))
	if s.Volumes[0].SizeGb != 10 || *s.Volumes[0].Purpose != "uploads" || s.Volumes[1].SizeGb != 1 || s.Volumes[1].Purpose != nil {
		t.Errorf("volumes %s", jsonString(s.Volumes))
	}
	if s.StorageMountPath() != DefaultStorageMountPath {
		t.Errorf("StorageMountPath %q", s.StorageMountPath())
	}
	s.Config = map[string]any{"storage_mount_path": "/srv"}
	if s.StorageMountPath() != "/srv" {
		t.Errorf("StorageMountPath %q", s.StorageMountPath())
	}
}

func TestRulesDeploymentType(t *testing.T) {
	only := func(f, typ string) E {
		return valueErr(b(f), fmt.Sprintf("%s is only used when deployment_type is '%s'", f, typ))
	}
	runCreate(t, []createCase{
		{"docker", docker(), nil},
		{"helm", helm(), nil},
		{"docker with helm fields", docker("helm_repo_url", "https://charts.example.com", "helm_chart_name", "x", "helm_chart_version", "1.0.0"), []E{
			{Type: "value_error", Loc: b("helm_repo_url"), Msg: "Value error, helm_repo_url is only used when deployment_type is 'helm'", Input: "https://charts.example.com"},
			only("helm_chart_name", "helm"),
			only("helm_chart_version", "helm"),
		}},
		{"explicit docker with a chart version", docker("deployment_type", "docker", "helm_chart_version", "1.0.0"), []E{only("helm_chart_version", "helm")}},
		{"helm with docker_image", helm("docker_image", "nginx"), []E{
			{Type: "value_error", Loc: b("docker_image"), Msg: "Value error, docker_image is only used when deployment_type is 'docker'", Input: "nginx"}}},
		{"helm missing one, docker_image set", helm("helm_chart_name", del, "docker_image", "nginx"), []E{
			only("docker_image", "docker"),
			e("missing", b("helm_chart_name"), "Field required when deployment_type is 'helm'", nil),
		}},
		{"null helm fields on docker are unset", docker("helm_repo_url", nil, "helm_chart_name", nil, "helm_chart_version", nil), nil},
		{"app_type helm with docker", docker("app_type", "helm"), nil},
		{"app_type web_app with helm", helm("app_type", "web_app"), nil},
		{"bad image is not missing", docker("docker_image", "Bad Image"), []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"bad chart version is not missing", helm("helm_chart_version", "x"), []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
	})
}

func TestRulesCustomValuesYAML(t *testing.T) {
	notMapping := func(what string) []E {
		return []E{{Type: "value_error", Loc: b("custom_values_yaml"), Input: nil,
			Msg: "Value error, custom_values_yaml should be a YAML mapping of chart values, not " + what}}
	}
	runCreate(t, []createCase{
		{"mapping", helm("custom_values_yaml", "replicaCount: 2\nimage:\n  tag: \"1.0\"\n"), nil},
		{"flow mapping", helm("custom_values_yaml", "{a: 1}"), nil},
		{"empty", helm("custom_values_yaml", ""), nil},
		{"blank", helm("custom_values_yaml", "  \n\n"), nil},
		{"comment only", helm("custom_values_yaml", "# nothing yet\n"), nil},
		{"null", helm("custom_values_yaml", "null"), nil},
		{"on docker too", docker("custom_values_yaml", "resources: {}\n"), nil},
		{"list", helm("custom_values_yaml", "- a\n- b\n"), notMapping("a list")},
		{"string", helm("custom_values_yaml", "hello"), notMapping("a string")},
		{"number", helm("custom_values_yaml", "42"), notMapping("a number")},
		{"boolean", helm("custom_values_yaml", "true"), notMapping("a boolean")},
		{"invalid", helm("custom_values_yaml", "a: [1, 2"), []E{valueErr(b("custom_values_yaml"),
			"custom_values_yaml is not valid YAML: line 1: did not find expected ',' or ']'")}},
		{"tab indent", helm("custom_values_yaml", "a:\n\tb: 1"), []E{valueErr(b("custom_values_yaml"),
			"custom_values_yaml is not valid YAML: line 2: found character that cannot start any token")}},
		{"alias", helm("custom_values_yaml", "a: &x [1, 2]\nb: *x\n"), []E{valueErr(b("custom_values_yaml"),
			"custom_values_yaml uses a YAML alias ('*x') at its line 2; aliases and anchors are not supported: write the values out")}},
		{"merge key", helm("custom_values_yaml", "base: &b {x: 1}\nother:\n  <<: *b\n"), []E{valueErr(b("custom_values_yaml"),
			"custom_values_yaml uses a YAML alias ('*b') at its line 3; aliases and anchors are not supported: write the values out")}},
		// Checked even when deployment_type is wrong.
		{"with a bad deployment_type", docker("deployment_type", "x", "custom_values_yaml", "[]"), []E{
			e("enum", b("deployment_type"), "Input should be 'docker' or 'helm'", map[string]any{"expected": "'docker' or 'helm'"}),
			valueErr(b("custom_values_yaml"), "custom_values_yaml should be a YAML mapping of chart values, not a list"),
		}},
	})

	// The size limit is in bytes; the schema's maxLength in characters.
	big := "a: " + strings.Repeat("é", (MaxCustomValuesBytes-3)/2+1)
	runCreate(t, []createCase{
		{"too many bytes", helm("custom_values_yaml", big), []E{valueErr(b("custom_values_yaml"),
			fmt.Sprintf("custom_values_yaml is %d bytes; at most %d are allowed", len(big), MaxCustomValuesBytes))}},
		{"at the limit", helm("custom_values_yaml", "a: "+strings.Repeat("x", MaxCustomValuesBytes-3)), nil},
		// The request of issue 18: a 200 KB string referenced 5,000 times
		// (1 GB expanded) was accepted and cost 47.5 s and 5.8 GB.
		{"amplification", helm("custom_values_yaml", amplified()), []E{valueErr(b("custom_values_yaml"),
			"custom_values_yaml uses a YAML alias ('*s') at its line 2; aliases and anchors are not supported: write the values out")}},
	})
}

// amplified is a custom_values_yaml under the size limit that expands to
// about a gigabyte when its aliases are expanded.
func amplified() string {
	var b strings.Builder
	b.WriteString("big: &s " + strings.Repeat("x", 200_000) + "\nrefs: [")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("*s")
	}
	b.WriteString("]\n")
	return b.String()
}

func TestRulesConfig(t *testing.T) {
	runCreate(t, []createCase{
		{"documented keys", docker("container_port", 8080, "config", m{"health_check_path": "/healthz?full=1", "storage_mount_path": "/srv/data",
			"ingress": false, "command": []any{"sh", "-c"}, "args": []any{"echo hi"}}), nil},
		{"empty", docker("config", m{}), nil},
		{"null", docker("config", nil), nil},
		{"undocumented keys", docker("container_port", 8080, "config", m{"port": 80, "ingress": true, "annotations": m{"a": "b"}}), []E{
			{Type: "extra_forbidden", Loc: b("config", "annotations"), Msg: msgExtra, Input: m{"a": "b"}},
			{Type: "extra_forbidden", Loc: b("config", "port"), Msg: msgExtra, Input: 80},
		}},
		{"null values", docker("config", m{"ingress": nil, "command": nil}), []E{
			typeErr("list_type", b("config", "command")),
			typeErr("bool_type", b("config", "ingress")),
		}},
		{"probe or ingress without a port", docker("config", m{"health_check_path": "/healthz", "ingress": true}), []E{
			{Type: "value_error", Loc: b("config", "health_check_path"), Msg: "Value error, config.health_check_path needs container_port", Input: "/healthz"},
			{Type: "value_error", Loc: b("config", "ingress"), Msg: "Value error, config.ingress needs container_port", Input: true},
		}},
		{"ingress off without a port", docker("config", m{"ingress": false}), nil},
		{"database with storage and 2 replicas", docker("app_type", "database", "storage_size_gb", 5, "replicas", 2), []E{
			{Type: "value_error", Loc: b("replicas"), Msg: "Value error, a database with storage runs at most 1 replica (its pods would share one volume)", Input: 2},
		}},
		{"database without storage, 3 replicas", docker("app_type", "database", "replicas", 3), nil},
	})
}

// TestCheckSkipsWhatTheSchemaReported runs the rules directly: a rule is
// skipped when a problem is recorded at, above or below its location.
func TestCheckSkipsWhatTheSchemaReported(t *testing.T) {
	s := Spec{DeploymentType: TypeDocker, EnvironmentVariables: []EnvironmentVariable{{Name: "A"}},
		Volumes: []Volume{{Path: "/"}}, CustomValuesYAML: ptr("- x")}
	all := s.check(bodyLoc, nil)
	checkErrs(t, all.sorted(), []E{
		e("missing", b("docker_image"), "Field required when deployment_type is 'docker'", nil),
		valueErr(b("volumes", 0, "path"), "a volume cannot be mounted at '/'"),
		valueErr(b("environment_variables", 0), "set exactly one of value or secret_ref"),
		valueErr(b("custom_values_yaml"), "custom_values_yaml should be a YAML mapping of chart values, not a list"),
	})
	prior := Errors{
		{Type: "x", Loc: b("docker_image")},
		{Type: "x", Loc: b("volumes")},
		{Type: "x", Loc: b("environment_variables", 0, "value")},
		{Type: "x", Loc: b("custom_values_yaml")},
	}
	if got := s.check(bodyLoc, prior); len(got) != 0 {
		t.Errorf("rules ran where the schema reported:\n%s", dumpErrs(got))
	}
	// A problem at deployment_type skips the docker/helm rules only.
	got := s.check(bodyLoc, Errors{{Type: "enum", Loc: b("deployment_type")}})
	if len(got) != 3 {
		t.Errorf("got:\n%s", dumpErrs(got))
	}
	// A problem at the root skips everything.
	if got := s.check(bodyLoc, Errors{{Type: "x", Loc: b()}}); len(got) != 0 {
		t.Errorf("got:\n%s", dumpErrs(got))
	}
}
