package schema

import (
	"reflect"
	"slices"
	"testing"
)

func mustUpdate(t *testing.T, body string) *Update {
	t.Helper()
	u, errs := DecodeUpdate([]byte(body))
	checkInvariants(t, u != nil, errs, "body")
	if errs != nil {
		t.Fatalf("DecodeUpdate(%s):\n%s", body, dumpErrs(errs))
	}
	return u
}

func TestDecodeUpdateFields(t *testing.T) {
	cases := []struct {
		body string
		want []string
	}{
		{`{}`, nil},
		{`{"replicas": 3}`, []string{"replicas"}},
		{`{"replicas": null}`, []string{"replicas"}},
		// Fields come in the spec's order, not the body's.
		{`{"image_ignore_tags": "x", "name": "web-2", "config": null, "docker_image": "nginx:2"}`,
			[]string{"name", "docker_image", "config", "image_ignore_tags"}},
		{`{"name": "a", "config": {}, "cpu_request": 1, "memory_request_mb": 64, "replicas": 0, "container_port": 80,
			"storage_size_gb": 1, "environment_variables": [], "docker_image": "nginx", "volumes": [],
			"helm_chart_version": "1.0.0", "custom_values_yaml": "a: 1", "image_update_strategy": "latest",
			"image_update_constraint": "x", "image_allow_tags": "x", "image_ignore_tags": "x"}`,
			[]string{"name", "docker_image", "replicas", "cpu_request", "memory_request_mb", "container_port",
				"storage_size_gb", "volumes", "environment_variables", "config", "helm_chart_version",
				"custom_values_yaml", "image_update_strategy", "image_update_constraint", "image_allow_tags", "image_ignore_tags"}},
	}
	for _, c := range cases {
		u := mustUpdate(t, c.body)
		if !slices.Equal(u.Fields, c.want) {
			t.Errorf("%s: fields %q, want %q", c.body, u.Fields, c.want)
		}
		for _, f := range c.want {
			if !u.Has(f) {
				t.Errorf("%s: Has(%q) false", c.body, f)
			}
		}
		if u.Has("cluster_id") {
			t.Errorf("%s: Has(cluster_id)", c.body)
		}
	}
}

func TestDecodeUpdateErrors(t *testing.T) {
	fixed := func(f, why string) E {
		return E{Type: "extra_forbidden", Loc: b(f), Msg: msgExtra + ": " + why, Input: noInput}
	}
	cases := []createCase{
		{"cluster_id", `{"cluster_id": "` + testClusterID + `"}`, []E{{Type: "extra_forbidden", Loc: b("cluster_id"),
			Msg: "Extra inputs are not permitted: cluster_id is fixed at creation (use promote to copy a deployment to another cluster)", Input: testClusterID}}},
		{"app_type", `{"app_type": "api"}`, []E{fixed("app_type", "app_type is fixed at creation")}},
		{"deployment_type", `{"deployment_type": "helm"}`, []E{fixed("deployment_type", "deployment_type is fixed at creation")}},
		{"helm_repo_url", `{"helm_repo_url": "https://x"}`, []E{fixed("helm_repo_url", "helm_repo_url is fixed at creation")}},
		{"helm_chart_name", `{"helm_chart_name": "x"}`, []E{fixed("helm_chart_name", "helm_chart_name is fixed at creation")}},
		{"run_as_uid", `{"run_as_uid": 1000}`, []E{fixed("run_as_uid", "run_as_uid is fixed at creation")}},
		// Refused keys come after the problems of accepted fields, in
		// alphabetical order.
		{"all fixed", `{"run_as_uid": 1, "helm_chart_name": "x", "cluster_id": "x", "app_type": "x", "deployment_type": "x", "helm_repo_url": "x"}`, []E{
			fixed("app_type", "app_type is fixed at creation"),
			fixed("cluster_id", "cluster_id is fixed at creation (use promote to copy a deployment to another cluster)"),
			fixed("deployment_type", "deployment_type is fixed at creation"),
			fixed("helm_chart_name", "helm_chart_name is fixed at creation"),
			fixed("helm_repo_url", "helm_repo_url is fixed at creation"),
			fixed("run_as_uid", "run_as_uid is fixed at creation"),
		}},
		{"unknown", `{"replica": 3}`, []E{{Type: "extra_forbidden", Loc: b("replica"), Msg: msgExtra, Input: 3}}},
		// The explanation is for the body's own fields only.
		{"nested name of a fixed field", `{"environment_variables": [{"name": "A", "value": "1", "app_type": "x"}]}`,
			[]E{e("extra_forbidden", b("environment_variables", 0, "app_type"), msgExtra, nil)}},
		{"name null", `{"name": null}`, []E{typeErr("string_type", b("name"))}},
		{"name pattern", `{"name": "Web"}`, []E{patternErr(b("name"), msgName, namePattern)}},
		{"replicas string", `{"replicas": "2"}`, []E{typeErr("int_type", b("replicas"))}},
		{"replicas fraction", `{"replicas": 2.5}`, []E{typeErr("int_from_float", b("replicas"))}},
		{"replicas negative", `{"replicas": -1}`, []E{geErr(b("replicas"), 0)}},
		{"cpu string", `{"cpu_request": "1"}`, []E{typeErr("float_type", b("cpu_request"))}},
		{"config list", `{"config": []}`, []E{typeErr("dict_type", b("config"))}},
		{"config unknown key", `{"config": {"foo": 1}}`, []E{e("extra_forbidden", b("config", "foo"), msgExtra, nil)}},
		{"volumes entry", `{"volumes": [1]}`, []E{typeErr("model_attributes_type", b("volumes", 0))}},
		{"volume sizeGb", `{"volumes": [{"path": "/a", "sizeGb": 0}]}`, []E{geErr(b("volumes", 0, "sizeGb"), 1)}},
		{"env list type", `{"environment_variables": {}}`, []E{typeErr("list_type", b("environment_variables"))}},
		{"docker_image pattern", `{"docker_image": "Nginx"}`, []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"helm_chart_version pattern", `{"helm_chart_version": "stable"}`, []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
		{"custom_values_yaml type", `{"custom_values_yaml": {"a": 1}}`, []E{typeErr("string_type", b("custom_values_yaml"))}},
		{"image text type", `{"image_allow_tags": 1}`, []E{typeErr("string_type", b("image_allow_tags"))}},
		{"storage bound", `{"storage_size_gb": 0}`, []E{geErr(b("storage_size_gb"), 1)}},
		{"port bound", `{"container_port": 70000}`, []E{leErr(b("container_port"), 65535)}},
		{"memory bound", `{"memory_request_mb": 1}`, []E{geErr(b("memory_request_mb"), 4)}},
		{"not an object", `[]`, []E{{Type: "model_attributes_type", Loc: b(), Msg: msgModel, Input: []any{}}}},
		{"null body", `null`, []E{e("model_attributes_type", b(), msgModel, nil)}},
		{"json invalid", `{"replicas": }`, []E{{Type: "json_invalid", Loc: b(13), Msg: "JSON decode error",
			Ctx: map[string]any{"error": "invalid character '}' looking for beginning of value"}, Input: map[string]any{}}}},
		{"empty body", ``, []E{{Type: "json_invalid", Loc: b(0), Msg: "JSON decode error",
			Ctx: map[string]any{"error": "Expecting value"}, Input: map[string]any{}}}},
		{"trailing data", `{}{}`, []E{{Type: "json_invalid", Loc: b(2), Msg: "JSON decode error",
			Ctx: map[string]any{"error": "extra data after the JSON value"}, Input: map[string]any{}}}},
		{"many, in order", `{"zz": 1, "replicas": "x", "app_type": "api", "name": "", "aa": 2}`, []E{
			tooShort(b("name"), 1),
			typeErr("int_type", b("replicas")),
			e("extra_forbidden", b("aa"), msgExtra, nil),
			fixed("app_type", "app_type is fixed at creation"),
			e("extra_forbidden", b("zz"), msgExtra, nil),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, errs := DecodeUpdate([]byte(c.body))
			checkInvariants(t, u != nil, errs, "body")
			checkErrs(t, errs, c.want)
			for range 20 { // the same problems in the same order every time
				if _, again := DecodeUpdate([]byte(c.body)); jsonString(again) != jsonString(errs) {
					t.Fatalf("errors changed between runs:\n%s\nthen\n%s", dumpErrs(errs), dumpErrs(again))
				}
			}
		})
	}
}

func dockerSpec(t *testing.T) Spec {
	return *mustCreate(t, docker("replicas", 2, "storage_size_gb", 5,
		"volumes", []any{map[string]any{"path": "/cache"}},
		"environment_variables", []any{map[string]any{"name": "A", "value": "1"}}))
}

func helmSpec(t *testing.T) Spec { return *mustCreate(t, helm("custom_values_yaml", "a: 1\n")) }

func TestUpdateApply(t *testing.T) {
	cases := []struct {
		name  string
		base  func(*testing.T) Spec
		patch string
		want  []E
		check func(t *testing.T, s Spec)
	}{
		{name: "replicas", base: dockerSpec, patch: `{"replicas": 0}`,
			check: func(t *testing.T, s Spec) {
				if *s.Replicas != 0 {
					t.Errorf("replicas %d", *s.Replicas)
				}
			}},
		{name: "clear replicas", base: dockerSpec, patch: `{"replicas": null}`,
			check: func(t *testing.T, s Spec) {
				if s.Replicas != nil {
					t.Errorf("replicas %d, want unset", *s.Replicas)
				}
			}},
		{name: "rename and new image", base: dockerSpec, patch: `{"name": "web-2", "docker_image": "nginx:1.28"}`,
			check: func(t *testing.T, s Spec) {
				if s.Name != "web-2" || *s.DockerImage != "nginx:1.28" || s.ClusterID != testClusterID || *s.Replicas != 2 {
					t.Errorf("got %s", jsonString(s))
				}
			}},
		{name: "volume default size", base: dockerSpec, patch: `{"volumes": [{"path": "/x"}]}`,
			check: func(t *testing.T, s Spec) {
				if len(s.Volumes) != 1 || s.Volumes[0].SizeGb != DefaultVolumeSizeGb {
					t.Errorf("volumes %+v", s.Volumes)
				}
			}},
		{name: "empty list clears", base: dockerSpec, patch: `{"environment_variables": [], "volumes": null}`,
			check: func(t *testing.T, s Spec) {
				if len(s.EnvironmentVariables) != 0 || s.Volumes != nil {
					t.Errorf("got %s", jsonString(s))
				}
			}},
		{name: "helm chart version", base: helmSpec, patch: `{"helm_chart_version": "9.0.0"}`,
			check: func(t *testing.T, s Spec) {
				if *s.HelmChartVersion != "9.0.0" {
					t.Errorf("version %q", *s.HelmChartVersion)
				}
			}},

		{name: "clear docker_image", base: dockerSpec, patch: `{"docker_image": null}`,
			want: []E{e("missing", b("docker_image"), "Field required when deployment_type is 'docker'", nil)}},
		{name: "clear helm_chart_version", base: helmSpec, patch: `{"helm_chart_version": null}`,
			want: []E{e("missing", b("helm_chart_version"), "Field required when deployment_type is 'helm'", nil)}},
		{name: "docker_image on helm", base: helmSpec, patch: `{"docker_image": "nginx"}`,
			want: []E{{Type: "value_error", Loc: b("docker_image"), Msg: "Value error, docker_image is only used when deployment_type is 'docker'", Input: "nginx"}}},
		{name: "helm_chart_version on docker", base: dockerSpec, patch: `{"helm_chart_version": "1.0.0"}`,
			want: []E{valueErr(b("helm_chart_version"), "helm_chart_version is only used when deployment_type is 'helm'")}},
		{name: "volume on storage mount", base: dockerSpec, patch: `{"volumes": [{"path": "/data"}]}`,
			want: []E{valueErr(b("volumes", 0, "path"), "path '/data' is already used by storage_size_gb's volume (config.storage_mount_path)")}},
		{name: "storage moved onto a volume", base: dockerSpec, patch: `{"config": {"storage_mount_path": "/cache"}}`,
			want: []E{valueErr(b("volumes", 0, "path"), "path '/cache' is already used by storage_size_gb's volume (config.storage_mount_path)")}},
		{name: "duplicate env", base: dockerSpec, patch: `{"environment_variables": [{"name": "A", "value": "1"}, {"name": "A", "secret_ref": "s/k"}]}`,
			want: []E{valueErr(b("environment_variables", 1, "name"), "duplicate environment variable name 'A' (first at index 0)")}},
		{name: "env without value", base: dockerSpec, patch: `{"environment_variables": [{"name": "A"}]}`,
			want: []E{valueErr(b("environment_variables", 0), "set exactly one of value or secret_ref")}},
		{name: "unclean volume", base: dockerSpec, patch: `{"volumes": [{"path": "/x/./y"}]}`,
			want: []E{valueErr(b("volumes", 0, "path"), "path should be clean: no '.', '..', '//' or trailing '/' (did you mean '/x/y'?)")}},
		{name: "values not a mapping", base: helmSpec, patch: `{"custom_values_yaml": "[1, 2]"}`,
			want: []E{valueErr(b("custom_values_yaml"), "custom_values_yaml should be a YAML mapping of chart values, not a list")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := c.base(t)
			before := jsonString(base)
			u := mustUpdate(t, c.patch)
			got, errs := u.Apply(base)
			checkErrs(t, errs, c.want)
			if c.check != nil && len(errs) == 0 {
				c.check(t, got)
			}
			if jsonString(base) != before {
				t.Errorf("Apply changed its input:\n was %s\n now %s", before, jsonString(base))
			}
		})
	}
}

// TestUpdateApplyDoesNotAlias checks that defaults applied to the result do
// not write through to the spec passed in or to the update.
func TestUpdateApplyDoesNotAlias(t *testing.T) {
	base := Spec{ClusterID: testClusterID, Name: "web", AppType: AppWebApp, DeploymentType: TypeDocker,
		DockerImage: ptr("nginx"), Volumes: []Volume{{Path: "/a"}}}
	u := mustUpdate(t, `{"replicas": 1}`)
	out, errs := u.Apply(base)
	if errs != nil {
		t.Fatal(errs)
	}
	if out.Volumes[0].SizeGb != DefaultVolumeSizeGb {
		t.Errorf("result sizeGb %d", out.Volumes[0].SizeGb)
	}
	if base.Volumes[0].SizeGb != 0 {
		t.Errorf("Apply wrote into its input: sizeGb %d", base.Volumes[0].SizeGb)
	}

	u = mustUpdate(t, `{"volumes": [{"path": "/b"}]}`)
	out1, _ := u.Apply(base)
	out1.Volumes[0].Path = "/changed"
	out2, _ := u.Apply(base)
	if out2.Volumes[0].Path != "/b" {
		t.Errorf("a result shares its volumes with the update: %q", out2.Volumes[0].Path)
	}
}

func TestChanged(t *testing.T) {
	a := dockerSpec(t)
	if got := Changed(a, a); got != nil {
		t.Errorf("Changed(a, a) = %q", got)
	}
	u := mustUpdate(t, `{"replicas": 3, "name": "web-2", "config": {"ingress": false}}`)
	c, errs := u.Apply(a)
	if errs != nil {
		t.Fatal(errs)
	}
	if got, want := Changed(a, c), []string{"name", "replicas", "config"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
	if got, want := Changed(c, a), []string{"name", "replicas", "config"}; !slices.Equal(got, want) {
		t.Errorf("Changed (reversed) = %q, want %q", got, want)
	}
	// Setting a field to the value it has is no change.
	same, _ := mustUpdate(t, `{"replicas": 2, "docker_image": "nginx:1.27"}`).Apply(a)
	if got := Changed(a, same); got != nil {
		t.Errorf("Changed after a no-op update = %q", got)
	}
	// Unset and empty lists read the same in a file: no change.
	x, y := a, a
	x.EnvironmentVariables, y.EnvironmentVariables = nil, []EnvironmentVariable{}
	if got := Changed(x, y); got != nil {
		t.Errorf("nil vs empty = %q", got)
	}
	// A change inside a list entry, and a pointer to an equal value.
	y = a
	y.Volumes = []Volume{{Path: "/cache", SizeGb: 11}}
	y.Replicas = ptr[int64](2)
	if got, want := Changed(a, y), []string{"volumes"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
	if got, want := Changed(Spec{}, Spec{Name: "x", CPURequest: ptr(0.5)}), []string{"name", "cpu_request"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
}

func TestUpdateNoFieldsIsIdentity(t *testing.T) {
	a := dockerSpec(t)
	got, errs := mustUpdate(t, `{}`).Apply(a)
	if errs != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("empty update: %s, %v", jsonString(got), errs)
	}
}
