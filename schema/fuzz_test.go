package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// createSeeds are valid and invalid bodies of POST /deployments.
func createSeeds() []string {
	return []string{
		docker(),
		helm(),
		helm("custom_values_yaml", "persistence:\n  enabled: true\n", "app_type", "database"),
		docker("replicas", 0, "cpu_request", 0.5, "memory_request_mb", 512, "container_port", 8080, "run_as_uid", 1000,
			"storage_size_gb", 1, "volumes", []any{m{"path": "/cache", "sizeGb": 2, "purpose": "cache"}},
			"environment_variables", []any{m{"name": "A", "value": "x\ny"}, m{"name": "B", "secret_ref": "s/k"}},
			"config", m{"health_check_path": "/h", "ingress": true, "command": []any{"sh"}, "args": []any{"-c", "yes"}},
			"image_update_strategy", "semver", "image_update_constraint", "~1", "image_allow_tags", "^v", "image_ignore_tags", "on"),
		docker("replicas", raw("2.0"), "memory_request_mb", raw("1e3"), "cluster_id", strings.ToUpper(testClusterID)),
		`{ "cluster_id": "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", "name": "example", "app_type": "web_app", "config": {}, "cpu_request": 0.5, "memory_request_mb": 512, "replicas": 1, "container_port": 8080, "environment_variables": [ { "name": "example", "value": "example", "secret_ref": "example" } ], "storage_size_gb": 1, "volumes": [ { "path": "example", "sizeGb": 10, "purpose": "example" } ], "run_as_uid": 1, "docker_image": "example", "deployment_type": "docker", "helm_repo_url": "example", "helm_chart_name": "example", "helm_chart_version": "example", "custom_values_yaml": "example" }`,
		docker("name", "Web", "replicas", -1, "zz", 1, "aa", 2, "config", m{"x": 1}),
		docker("environment_variables", []any{m{"name": "A"}, m{"name": "A", "value": "1"}, 5}),
		docker("volumes", []any{m{"path": "/"}, m{"path": "/a/"}, m{"path": "/a"}, m{"path": "/a"}}, "storage_size_gb", 1),
		docker("cpu_request", raw("1e10000000"), "replicas", raw("1e-10000000")),
		docker("custom_values_yaml", "- a", "deployment_type", "x"),
		docker("environment_variables", []any{m{"name": "A", "value": "\u0088\u0085\u2028\x7f\n x"}}),
		`{}`, `[]`, `null`, `"x"`, ``, `{`, `{} {}`, `{"a":1}x`, `{"name": "\ud800"}`,
	}
}

// updateSeeds are valid and invalid bodies of PATCH /deployments/{id}.
func updateSeeds() []string {
	return []string{
		`{}`, `{"replicas": 0}`, `{"replicas": null, "docker_image": null}`, `{"name": "web-2", "config": {"ingress": false}}`,
		`{"helm_chart_version": "2.0.0", "custom_values_yaml": "a: 1"}`, `{"volumes": [{"path": "/data"}], "storage_size_gb": 3}`,
		`{"environment_variables": [{"name": "A", "value": "1"}, {"name": "A", "secret_ref": "s/k"}]}`,
		`{"cluster_id": "x", "app_type": "api", "run_as_uid": 0}`, `{"replicas": "2"}`, `[]`, ``, `{"x": 1}`,
		`{"custom_values_yaml": "- x"}`, `{"volumes": [{"path": "/a/../b"}]}`, `{"memory_request_mb": 1.0e3}`,
	}
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range createSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, errs := DecodeCreate(data)
		checkInvariants(t, spec != nil, errs, "body")
		spec2, errs2 := DecodeCreate(data)
		if jsonString(errs2) != jsonString(errs) || jsonString(spec2) != jsonString(spec) {
			t.Fatalf("not deterministic:\n%s\nthen\n%s", dumpErrs(errs), dumpErrs(errs2))
		}
		if spec != nil {
			checkSpecFile(t, *spec)
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	for _, s := range updateSeeds() {
		f.Add([]byte(s))
	}
	bases := []Spec{}
	for _, s := range []string{docker("storage_size_gb", 1, "volumes", []any{m{"path": "/cache"}}), helm()} {
		spec, errs := DecodeCreate([]byte(s))
		if errs != nil {
			f.Fatal(errs)
		}
		bases = append(bases, *spec)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, errs := DecodeUpdate(data)
		checkInvariants(t, u != nil, errs, "body")
		if _, errs2 := DecodeUpdate(data); jsonString(errs2) != jsonString(errs) {
			t.Fatalf("not deterministic:\n%s\nthen\n%s", dumpErrs(errs), dumpErrs(errs2))
		}
		if u == nil {
			return
		}
		for _, base := range bases {
			before := jsonString(base)
			out, aerrs := u.Apply(base)
			if jsonString(base) != before {
				t.Fatal("Apply changed its input")
			}
			checkInvariants(t, len(aerrs) == 0, aerrs, "body")
			if len(aerrs) == 0 {
				checkSpecFile(t, out)
			}
		}
	})
}

// checkSpecFile asserts that a spec the API accepted makes a file that
// ParseFile accepts, with the same content.
func checkSpecFile(t *testing.T, spec Spec) {
	t.Helper()
	d := testDeployment(spec)
	data, err := EncodeFile(d)
	if err != nil {
		t.Fatalf("EncodeFile of an accepted spec: %v", err)
	}
	back, errs := ParseFile(data)
	if errs != nil {
		t.Fatalf("ParseFile refuses the file of an accepted spec:\n%s\n%s", dumpErrs(errs), data)
	}
	if back.Spec.Digest() != spec.Digest() {
		t.Fatalf("the spec changed through its file:\n was %s\n now %s", jsonString(spec), jsonString(back.Spec))
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(baseFile))
	for _, glob := range []string{"testdata/*.golden", "../examples/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range []string{"", "---\n", "a: 1\n---\nb: 2\n", "a: &x 1\nb: *x\n", "1: a\n", "a: .inf\n", "a: 1\na: 2\n",
		"- a\n", "spec: {volumes: [{path: /}]}\n", "a: {<<: {b: 1}}\n", "\ta: 1\n", `{"apiVersion": "mengi.cloud/v1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, errs := ParseFile(data)
		checkInvariants(t, d != nil, errs, "")
		lines := 1 // YAML breaks lines at \n, \r, NEL, LS and PS
		for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += bytes.Count(data, []byte(br))
		}
		for _, e := range errs {
			if e.Line < 0 || e.Line > lines+1 {
				t.Fatalf("line %d of a %d-line file: %s", e.Line, lines, jsonString(e))
			}
		}
		if d == nil {
			return
		}
		enc, err := EncodeFile(d)
		if err != nil {
			t.Fatalf("EncodeFile of a parsed file: %v", err)
		}
		back, errs := ParseFile(enc)
		if errs != nil {
			t.Fatalf("ParseFile refuses its own encoding:\n%s\n%s", dumpErrs(errs), enc)
		}
		again, err := EncodeFile(back)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable (%v):\n%s", err, lineDiff(string(enc), string(again)))
		}
		if back.Spec.Digest() != d.Spec.Digest() {
			t.Fatalf("the spec changed through its file")
		}
	})
}

// FuzzFileStrings puts arbitrary text into the free-text fields of a spec
// and checks that its file gives it back unchanged: the quoting and block
// styles of EncodeFile must hold any string.
func FuzzFileStrings(f *testing.F) {
	for _, s := range []string{"", "yes", "a\nb", "\nx", " x\n", "a \n", "\t", "\r\n", "#", "- a", "'\"", "\x00", "\u2028", "\ufeffx", "…\u0085", "a: b\n  c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 255 {
			return // JSON bodies and YAML files hold only valid UTF-8; purpose holds 256 characters
		}
		spec := Spec{ClusterID: testClusterID, Name: "web", AppType: AppWebApp, DeploymentType: TypeDocker, DockerImage: ptr("nginx"),
			EnvironmentVariables: []EnvironmentVariable{{Name: "A", Value: &s}},
			Volumes:              []Volume{{Path: "/a", SizeGb: 1, Purpose: &s}},
			ImageAllowTags:       &s,
			Config:               map[string]any{"args": []any{s, s + "\n"}},
		}
		d := testDeployment(spec)
		d.Status = &Status{Phase: PhaseError, ErrorMessage: s, ValuesYAML: s}
		data, err := EncodeFile(d)
		if err != nil {
			t.Fatal(err)
		}
		back, errs := ParseFile(data)
		if errs != nil {
			t.Fatalf("%q:\n%s\n%s", s, dumpErrs(errs), data)
		}
		if *back.Spec.EnvironmentVariables[0].Value != s || *back.Spec.Volumes[0].Purpose != s || *back.Spec.ImageAllowTags != s ||
			back.Spec.Config["args"].([]any)[1] != s+"\n" || back.Status.ErrorMessage != s || back.Status.ValuesYAML != s {
			t.Fatalf("%q changed in the file:\n%s", s, data)
		}
	})
}
