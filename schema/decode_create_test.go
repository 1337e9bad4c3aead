package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The messages of Pydantic v2 that the API reproduces.
const (
	msgMissing  = "Field required"
	msgExtra    = "Extra inputs are not permitted"
	msgString   = "Input should be a valid string"
	msgInt      = "Input should be a valid integer"
	msgIntFloat = "Input should be a valid integer, got a number with a fractional part"
	msgFloat    = "Input should be a valid number"
	msgBool     = "Input should be a valid boolean"
	msgList     = "Input should be a valid list"
	msgDict     = "Input should be a valid dictionary"
	msgModel    = "Input should be a valid dictionary or object to extract fields from"

	msgName       = "String should be a DNS label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
	msgEnvName    = "String should be an environment variable name: letters, digits and '_', not starting with a digit"
	msgSecretRef  = "String should be '<secret-name>/<key>', naming a key of a Kubernetes Secret in the deployment's namespace"
	msgAbsPath    = "String should be an absolute path without spaces"
	msgHealthPath = "String should be an absolute URL path such as '/healthz'"
	msgImage      = "String should be a Docker image reference such as 'nginx:1.27' or 'ghcr.io/org/app@sha256:<digest>'"
	msgRepoURL    = "String should be an http://, https:// or oci:// URL"
	msgChartName  = "String should be a chart name: letters, digits, '.', '_' and '-'"
	msgChartVer   = "String should be an exact semantic version such as '1.2.3'"
	msgAppTypes   = "'web_app', 'api', 'database', 'static_site', 'container' or 'helm'"
	msgRoot       = "Input should be greater than or equal to 1: running as root (UID 0) is not allowed"
)

func ge(n any) (string, map[string]any) {
	return fmt.Sprintf("Input should be greater than or equal to %v", n), map[string]any{"ge": n}
}

func le(n any) (string, map[string]any) {
	return fmt.Sprintf("Input should be less than or equal to %v", n), map[string]any{"le": n}
}

func geErr(l []any, n any) E { m, c := ge(n); return e("greater_than_equal", l, m, c) }
func leErr(l []any, n any) E { m, c := le(n); return e("less_than_equal", l, m, c) }

func typeErr(typ string, l []any) E {
	msgs := map[string]string{"string_type": msgString, "int_type": msgInt, "int_from_float": msgIntFloat,
		"float_type": msgFloat, "bool_type": msgBool, "list_type": msgList, "dict_type": msgDict,
		"model_attributes_type": msgModel}
	return e(typ, l, msgs[typ], nil)
}

func patternErr(l []any, msg, pattern string) E {
	return e("string_pattern_mismatch", l, msg, map[string]any{"pattern": pattern})
}

func tooLong(l []any, n int) E {
	return e("string_too_long", l, fmt.Sprintf("String should have at most %d characters", n), map[string]any{"max_length": n})
}

func tooShort(l []any, n int) E {
	word := "characters"
	if n == 1 {
		word = "character"
	}
	return e("string_too_short", l, fmt.Sprintf("String should have at least %d %s", n, word), map[string]any{"min_length": n})
}

func listTooLong(l []any, max, got int) E {
	return e("too_long", l, fmt.Sprintf("List should have at most %d items after validation, not %d", max, got),
		map[string]any{"field_type": "List", "max_length": max, "actual_length": got})
}

func valueErr(l []any, msg string) E { return e("value_error", l, "Value error, "+msg, nil) }

const (
	namePattern      = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
	envNamePattern   = "^[A-Za-z_][A-Za-z0-9_]*$"
	secretRefPattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$"
	pathPattern      = "^/[^\\s]*$"
	repoURLPattern   = "^(https?|oci)://[^\\s/?#]+[^\\s]*$"
	chartNamePattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
	chartVerPattern  = "^v?(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?$"
	imagePattern     = "^(?:[a-zA-Z0-9][a-zA-Z0-9.-]*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)

func b(parts ...any) []any { return append([]any{"body"}, parts...) }

type createCase struct {
	name string
	body string
	want []E
}

func runCreate(t *testing.T, cases []createCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, errs := DecodeCreate([]byte(c.body))
			checkInvariants(t, spec != nil, errs, "body")
			checkErrs(t, errs, c.want)
		})
	}
}

func TestDecodeCreateValid(t *testing.T) {
	full := `{"cluster_id": "` + testClusterID + `", "name": "shop-api", "app_type": "api",
		"config": {"health_check_path": "/healthz", "storage_mount_path": "/var/lib/shop", "ingress": true,
			"command": ["/bin/shop"], "args": ["--port", "8080"]},
		"cpu_request": 0.25, "memory_request_mb": 256, "replicas": 0, "container_port": 8080,
		"environment_variables": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret_ref": "shop-db/password"},
			{"name": "EMPTY", "value": "", "secret_ref": null}],
		"storage_size_gb": 5, "volumes": [{"path": "/cache", "sizeGb": 2, "purpose": "cache"}, {"path": "/uploads"}],
		"run_as_uid": 1000, "docker_image": "ghcr.io/shop/api:v1.2.3", "deployment_type": "docker",
		"helm_repo_url": null, "helm_chart_name": null, "helm_chart_version": null,
		"custom_values_yaml": "ingress:\n  enabled: true\n",
		"image_update_strategy": "semver", "image_update_constraint": "~1.2", "image_allow_tags": "^v1\\.", "image_ignore_tags": "latest"}`
	got := mustCreate(t, full)
	want := &Spec{
		ClusterID: testClusterID, Name: "shop-api", AppType: AppAPI, DeploymentType: TypeDocker,
		DockerImage: ptr("ghcr.io/shop/api:v1.2.3"), Replicas: ptr[int64](0), CPURequest: ptr(0.25),
		MemoryRequestMB: ptr[int64](256), ContainerPort: ptr[int64](8080), RunAsUID: ptr[int64](1000),
		StorageSizeGB: ptr[int64](5),
		Volumes:       []Volume{{Path: "/cache", SizeGb: 2, Purpose: ptr("cache")}, {Path: "/uploads", SizeGb: DefaultVolumeSizeGb}},
		EnvironmentVariables: []EnvironmentVariable{{Name: "LOG_LEVEL", Value: ptr("info")},
			{Name: "DB_PASSWORD", SecretRef: ptr("shop-db/password")}, {Name: "EMPTY", Value: ptr("")}},
		Config: map[string]any{"health_check_path": "/healthz", "storage_mount_path": "/var/lib/shop", "ingress": true,
			"command": []any{"/bin/shop"}, "args": []any{"--port", "8080"}},
		CustomValuesYAML:    ptr("ingress:\n  enabled: true\n"),
		ImageUpdateStrategy: ptr("semver"), ImageUpdateConstraint: ptr("~1.2"), ImageAllowTags: ptr("^v1\\."), ImageIgnoreTags: ptr("latest"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeCreate:\n got  %s\n want %s", jsonString(got), jsonString(want))
	}
}

func TestDecodeCreateDefaults(t *testing.T) {
	t.Run("docker", func(t *testing.T) {
		s := mustCreate(t, `{"cluster_id": "`+testClusterID+`", "name": "web", "docker_image": "nginx"}`)
		if s.AppType != AppHelm || s.DeploymentType != TypeDocker {
			t.Errorf("app_type %q deployment_type %q, want helm and docker (Mengi's defaults)", s.AppType, s.DeploymentType)
		}
		if s.Replicas != nil || s.Config != nil || s.Volumes != nil || s.EnvironmentVariables != nil {
			t.Errorf("unset fields should stay unset: %s", jsonString(s))
		}
	})
	t.Run("helm", func(t *testing.T) {
		s := mustCreate(t, helm())
		if s.AppType != AppHelm || s.DeploymentType != TypeHelm || s.DockerImage != nil {
			t.Errorf("got %s", jsonString(s))
		}
	})
	t.Run("explicit nulls", func(t *testing.T) {
		s := mustCreate(t, docker("config", nil, "cpu_request", nil, "memory_request_mb", nil, "replicas", nil,
			"container_port", nil, "environment_variables", nil, "storage_size_gb", nil, "volumes", nil, "run_as_uid", nil,
			"helm_repo_url", nil, "helm_chart_name", nil, "helm_chart_version", nil, "custom_values_yaml", nil,
			"image_update_strategy", nil, "image_update_constraint", nil, "image_allow_tags", nil, "image_ignore_tags", nil))
		if !reflect.DeepEqual(s, mustCreate(t, docker())) {
			t.Errorf("null fields should equal absent ones: %s", jsonString(s))
		}
	})
	t.Run("volume sizeGb", func(t *testing.T) {
		s := mustCreate(t, docker("volumes", []any{map[string]any{"path": "/a"}, map[string]any{"path": "/b", "sizeGb": 3}}))
		if s.Volumes[0].SizeGb != 10 || s.Volumes[1].SizeGb != 3 {
			t.Errorf("volumes %+v, want sizes 10 and 3", s.Volumes)
		}
	})
	t.Run("upper-case cluster_id", func(t *testing.T) {
		// Mengi's reference page uses an upper-case UUID; it names a folder
		// in Git, so it is kept in one spelling.
		s := mustCreate(t, docker("cluster_id", "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0"))
		if s.ClusterID != testClusterID {
			t.Errorf("cluster_id %q, want %q", s.ClusterID, testClusterID)
		}
	})
	t.Run("integral numbers", func(t *testing.T) {
		// JSON Schema and Pydantic take 2.0 and 1e3 as integers.
		s := mustCreate(t, docker("replicas", raw("2.0"), "memory_request_mb", raw("1e3"), "container_port", raw("8.080e3"),
			"cpu_request", raw("1"), "volumes", []any{map[string]any{"path": "/a", "sizeGb": raw("5.0")}}))
		if *s.Replicas != 2 || *s.MemoryRequestMB != 1000 || *s.ContainerPort != 8080 || *s.CPURequest != 1 || s.Volumes[0].SizeGb != 5 {
			t.Errorf("got %s", jsonString(s))
		}
		// A literal with a fraction is a float64, as in Python's json: this
		// one is 3.0 exactly.
		s = mustCreate(t, docker("replicas", raw("3.0000000000000000000001")))
		if *s.Replicas != 3 {
			t.Errorf("replicas %d", *s.Replicas)
		}
	})
	t.Run("bounds included", func(t *testing.T) {
		mustCreate(t, docker("cpu_request", 0.001, "memory_request_mb", 4, "replicas", 0, "container_port", 1,
			"storage_size_gb", 1, "run_as_uid", 1, "volumes", []any{map[string]any{"path": "/a", "sizeGb": 1}}))
		mustCreate(t, docker("cpu_request", 1024, "memory_request_mb", 4194304, "replicas", 1000, "container_port", 65535,
			"storage_size_gb", 65536, "run_as_uid", 2147483647, "volumes", []any{map[string]any{"path": "/a", "sizeGb": 65536}}))
	})
}

func TestDecodeCreateJSONInvalid(t *testing.T) {
	inv := func(offset int, msg string) []E {
		return []E{{Type: "json_invalid", Loc: b(offset), Msg: "JSON decode error", Ctx: map[string]any{"error": msg}, Input: map[string]any{}}}
	}
	runCreate(t, []createCase{
		{"empty", ``, inv(0, "Expecting value")},
		{"blank", "  \n", inv(3, "Expecting value")},
		{"bad key", `{x`, inv(1, "invalid character 'x' looking for beginning of object key string")},
		{"trailing comma", `{"name": "a",}`, inv(13, "invalid character '}' looking for beginning of object key string")},
		{"missing colon", `{"a" 1}`, inv(5, "invalid character '1' after object key")},
		{"truncated", `{"name":`, inv(8, "unexpected EOF")},
		{"single quotes", `{'name': 'a'}`, inv(1, "invalid character '\\'' looking for beginning of object key string")},
		{"trailing object", `{} {}`, inv(3, "extra data after the JSON value")},
		{"trailing garbage", `{}x`, inv(2, "extra data after the JSON value")},
		{"trailing brace", `{"a":1}}`, inv(7, "extra data after the JSON value")},
		{"NaN", `{"cpu_request": NaN}`, inv(16, "invalid character 'N' looking for beginning of value")},
	})
}

func TestDecodeCreateNotAnObject(t *testing.T) {
	for _, in := range []string{`[]`, `"web"`, `1`, `true`, `null`, `[{"name": "web"}]`} {
		t.Run(in, func(t *testing.T) {
			var input any
			_ = json.Unmarshal([]byte(in), &input)
			spec, errs := DecodeCreate([]byte(in))
			checkInvariants(t, spec != nil, errs, "body")
			checkErrs(t, errs, []E{{Type: "model_attributes_type", Loc: b(), Msg: msgModel, Input: input}})
		})
	}
}

func TestDecodeCreateRequired(t *testing.T) {
	runCreate(t, []createCase{
		{"empty object", `{}`, []E{
			{Type: "missing", Loc: b("cluster_id"), Msg: msgMissing, Input: map[string]any{}},
			{Type: "missing", Loc: b("name"), Msg: msgMissing, Input: map[string]any{}},
			// deployment_type defaults to docker, which needs an image.
			{Type: "missing", Loc: b("docker_image"), Msg: "Field required when deployment_type is 'docker'", Input: nil},
		}},
		{"cluster_id", docker("cluster_id", del), []E{e("missing", b("cluster_id"), msgMissing, nil)}},
		{"name", docker("name", del), []E{e("missing", b("name"), msgMissing, nil)}},
		{"docker_image for docker", docker("docker_image", del), []E{
			{Type: "missing", Loc: b("docker_image"), Msg: "Field required when deployment_type is 'docker'", Input: nil}}},
		{"docker_image null", docker("docker_image", nil), []E{
			e("missing", b("docker_image"), "Field required when deployment_type is 'docker'", nil)}},
		{"docker_image with default deployment_type", `{"cluster_id": "` + testClusterID + `", "name": "web"}`, []E{
			e("missing", b("docker_image"), "Field required when deployment_type is 'docker'", nil)}},
		{"helm fields", `{"cluster_id": "` + testClusterID + `", "name": "web", "deployment_type": "helm"}`, []E{
			e("missing", b("helm_repo_url"), "Field required when deployment_type is 'helm'", nil),
			e("missing", b("helm_chart_name"), "Field required when deployment_type is 'helm'", nil),
			e("missing", b("helm_chart_version"), "Field required when deployment_type is 'helm'", nil),
		}},
		{"helm_chart_version", helm("helm_chart_version", nil), []E{
			e("missing", b("helm_chart_version"), "Field required when deployment_type is 'helm'", nil)}},
		{"env name", docker("environment_variables", []any{map[string]any{"value": "x"}}), []E{
			{Type: "missing", Loc: b("environment_variables", 0, "name"), Msg: msgMissing, Input: map[string]any{"value": "x"}}}},
		{"volume path", docker("volumes", []any{map[string]any{"sizeGb": 1}}), []E{
			{Type: "missing", Loc: b("volumes", 0, "path"), Msg: msgMissing, Input: map[string]any{"sizeGb": 1}}}},
	})
}

func TestDecodeCreateExtraForbidden(t *testing.T) {
	runCreate(t, []createCase{
		{"typo", docker("docker_imgae", "nginx"), []E{
			{Type: "extra_forbidden", Loc: b("docker_imgae"), Msg: msgExtra, Input: "nginx"}}},
		{"response fields", docker("status", "running", "id", testID), []E{
			// Unknown fields come last, in alphabetical order.
			{Type: "extra_forbidden", Loc: b("id"), Msg: msgExtra, Input: testID},
			{Type: "extra_forbidden", Loc: b("status"), Msg: msgExtra, Input: "running"},
		}},
		{"camelCase", docker("dockerImage", "x", "sizeGb", 1), []E{
			e("extra_forbidden", b("dockerImage"), msgExtra, nil),
			e("extra_forbidden", b("sizeGb"), msgExtra, nil),
		}},
		{"config key", docker("config", map[string]any{"healthCheckPath": "/h", "replicas": 3}), []E{
			{Type: "extra_forbidden", Loc: b("config", "healthCheckPath"), Msg: msgExtra, Input: "/h"},
			{Type: "extra_forbidden", Loc: b("config", "replicas"), Msg: msgExtra, Input: 3},
		}},
		{"env entry", docker("environment_variables", []any{map[string]any{"name": "A", "value": "1", "valueFrom": "x"}}), []E{
			e("extra_forbidden", b("environment_variables", 0, "valueFrom"), msgExtra, nil)}},
		{"volume entry", docker("volumes", []any{map[string]any{"path": "/a", "size_gb": 1}}), []E{
			e("extra_forbidden", b("volumes", 0, "size_gb"), msgExtra, nil)}},
		{"key with slash", docker("a/b", 1, "~x", 2), []E{
			e("extra_forbidden", b("a/b"), msgExtra, nil),
			e("extra_forbidden", b("~x"), msgExtra, nil),
		}},
		{"fixed-at-creation fields are fine in create", docker("run_as_uid", 1000, "app_type", "container"), nil},
	})
}

func TestDecodeCreateTypes(t *testing.T) {
	runCreate(t, []createCase{
		{"cluster_id number", docker("cluster_id", 1), []E{typeErr("string_type", b("cluster_id"))}},
		{"name number", docker("name", 1), []E{typeErr("string_type", b("name"))}},
		{"name null", docker("name", nil), []E{typeErr("string_type", b("name"))}},
		{"name list", docker("name", []any{"web"}), []E{typeErr("string_type", b("name"))}},
		{"docker_image number", docker("docker_image", 5), []E{typeErr("string_type", b("docker_image"))}},
		{"helm_repo_url bool", helm("helm_repo_url", true), []E{typeErr("string_type", b("helm_repo_url"))}},
		{"helm_chart_name object", helm("helm_chart_name", map[string]any{}), []E{typeErr("string_type", b("helm_chart_name"))}},
		{"helm_chart_version number", helm("helm_chart_version", 1.2), []E{typeErr("string_type", b("helm_chart_version"))}},
		{"custom_values_yaml object", docker("custom_values_yaml", map[string]any{"a": 1}), []E{typeErr("string_type", b("custom_values_yaml"))}},
		{"image_update_strategy number", docker("image_update_strategy", 1), []E{typeErr("string_type", b("image_update_strategy"))}},
		{"image_update_constraint bool", docker("image_update_constraint", false), []E{typeErr("string_type", b("image_update_constraint"))}},
		{"image_allow_tags list", docker("image_allow_tags", []any{}), []E{typeErr("string_type", b("image_allow_tags"))}},
		{"image_ignore_tags number", docker("image_ignore_tags", 0), []E{typeErr("string_type", b("image_ignore_tags"))}},

		{"memory string", docker("memory_request_mb", "512"), []E{typeErr("int_type", b("memory_request_mb"))}},
		{"memory bool", docker("memory_request_mb", true), []E{typeErr("int_type", b("memory_request_mb"))}},
		{"replicas string", docker("replicas", "1"), []E{typeErr("int_type", b("replicas"))}},
		{"container_port list", docker("container_port", []any{80}), []E{typeErr("int_type", b("container_port"))}},
		{"storage_size_gb object", docker("storage_size_gb", map[string]any{}), []E{typeErr("int_type", b("storage_size_gb"))}},
		{"run_as_uid string", docker("run_as_uid", "1000"), []E{typeErr("int_type", b("run_as_uid"))}},
		{"sizeGb null", docker("volumes", []any{map[string]any{"path": "/a", "sizeGb": nil}}), []E{typeErr("int_type", b("volumes", 0, "sizeGb"))}},

		{"memory fraction", docker("memory_request_mb", 512.5), []E{typeErr("int_from_float", b("memory_request_mb"))}},
		{"replicas fraction", docker("replicas", 1.5), []E{typeErr("int_from_float", b("replicas"))}},
		{"container_port fraction", docker("container_port", raw("80.1")), []E{typeErr("int_from_float", b("container_port"))}},
		{"storage_size_gb fraction", docker("storage_size_gb", raw("1e-1")), []E{typeErr("int_from_float", b("storage_size_gb"))}},
		{"run_as_uid fraction", docker("run_as_uid", 1000.5), []E{typeErr("int_from_float", b("run_as_uid"))}},
		{"sizeGb fraction", docker("volumes", []any{map[string]any{"path": "/a", "sizeGb": 2.5}}), []E{typeErr("int_from_float", b("volumes", 0, "sizeGb"))}},

		{"cpu string", docker("cpu_request", "0.5"), []E{typeErr("float_type", b("cpu_request"))}},
		{"cpu bool", docker("cpu_request", false), []E{typeErr("float_type", b("cpu_request"))}},

		{"ingress string", docker("config", map[string]any{"ingress": "yes"}), []E{typeErr("bool_type", b("config", "ingress"))}},
		{"ingress number", docker("config", map[string]any{"ingress": 1}), []E{typeErr("bool_type", b("config", "ingress"))}},

		{"volumes object", docker("volumes", map[string]any{"path": "/a"}), []E{typeErr("list_type", b("volumes"))}},
		{"env string", docker("environment_variables", "A=1"), []E{typeErr("list_type", b("environment_variables"))}},
		{"env object", docker("environment_variables", map[string]any{"A": "1"}), []E{typeErr("list_type", b("environment_variables"))}},
		{"command string", docker("config", map[string]any{"command": "/bin/sh -c x"}), []E{typeErr("list_type", b("config", "command"))}},
		{"args string", docker("config", map[string]any{"args": "x"}), []E{typeErr("list_type", b("config", "args"))}},
		{"command item", docker("config", map[string]any{"command": []any{"/bin/sh", 1}}), []E{typeErr("string_type", b("config", "command", 1))}},

		{"config list", docker("config", []any{}), []E{typeErr("dict_type", b("config"))}},
		{"config string", docker("config", "ingress=true"), []E{typeErr("dict_type", b("config"))}},

		{"env entry string", docker("environment_variables", []any{"A=1"}), []E{typeErr("model_attributes_type", b("environment_variables", 0))}},
		{"env entry null", docker("environment_variables", []any{nil}), []E{typeErr("model_attributes_type", b("environment_variables", 0))}},
		{"volume entry string", docker("volumes", []any{map[string]any{"path": "/a"}, "/b"}), []E{typeErr("model_attributes_type", b("volumes", 1))}},
		{"env name number", docker("environment_variables", []any{map[string]any{"name": 1, "value": "x"}}), []E{typeErr("string_type", b("environment_variables", 0, "name"))}},
		{"env value number", docker("environment_variables", []any{map[string]any{"name": "A", "value": 1}}), []E{typeErr("string_type", b("environment_variables", 0, "value"))}},
		{"env secret_ref bool", docker("environment_variables", []any{map[string]any{"name": "A", "secret_ref": true}}), []E{typeErr("string_type", b("environment_variables", 0, "secret_ref"))}},
		{"volume path number", docker("volumes", []any{map[string]any{"path": 1}}), []E{typeErr("string_type", b("volumes", 0, "path"))}},
		{"volume purpose number", docker("volumes", []any{map[string]any{"path": "/a", "purpose": 1}}), []E{typeErr("string_type", b("volumes", 0, "purpose"))}},
		{"health_check_path number", docker("config", map[string]any{"health_check_path": 1}), []E{typeErr("string_type", b("config", "health_check_path"))}},
	})
}

func TestDecodeCreateEnums(t *testing.T) {
	appTypes := map[string]any{"expected": msgAppTypes}
	deployTypes := map[string]any{"expected": "'docker' or 'helm'"}
	runCreate(t, []createCase{
		{"app_type unknown", docker("app_type", "webapp"), []E{{Type: "enum", Loc: b("app_type"), Msg: "Input should be " + msgAppTypes, Ctx: appTypes, Input: "webapp"}}},
		{"app_type case", docker("app_type", "Web_App"), []E{e("enum", b("app_type"), "Input should be "+msgAppTypes, appTypes)}},
		{"app_type null", docker("app_type", nil), []E{e("enum", b("app_type"), "Input should be "+msgAppTypes, appTypes)}},
		{"app_type number", docker("app_type", 1), []E{e("enum", b("app_type"), "Input should be "+msgAppTypes, appTypes)}},
		{"deployment_type unknown", docker("deployment_type", "kubectl"), []E{e("enum", b("deployment_type"), "Input should be 'docker' or 'helm'", deployTypes)}},
		{"deployment_type null", docker("deployment_type", nil), []E{e("enum", b("deployment_type"), "Input should be 'docker' or 'helm'", deployTypes)}},
		// With deployment_type wrong, what it requires is unknown: no rule
		// about docker_image or the helm fields runs.
		{"deployment_type wrong skips its rules", `{"cluster_id": "` + testClusterID + `", "name": "a", "deployment_type": "Helm", "docker_image": "nginx"}`,
			[]E{e("enum", b("deployment_type"), "Input should be 'docker' or 'helm'", deployTypes)}},
	})
	for _, at := range []AppType{AppWebApp, AppAPI, AppDatabase, AppStaticSite, AppContainer, AppHelm} {
		if s := mustCreate(t, docker("app_type", string(at))); s.AppType != at {
			t.Errorf("app_type %q decoded as %q", at, s.AppType)
		}
	}
}

func TestDecodeCreateUUID(t *testing.T) {
	uuidErr := func(in, detail string) []E {
		return []E{{Type: "uuid_parsing", Loc: b("cluster_id"), Msg: "Input should be a valid UUID, " + detail,
			Ctx: map[string]any{"error": detail}, Input: in}}
	}
	runCreate(t, []createCase{
		{"word", docker("cluster_id", "prod"), uuidErr("prod", "must have 5 elements")},
		{"empty", docker("cluster_id", ""), uuidErr("", "must have 5 elements")},
		{"short group", docker("cluster_id", "2489e9ad-2ee2-8e00-8ec9-32d5f69181c"), uuidErr("2489e9ad-2ee2-8e00-8ec9-32d5f69181c", "element 5 must be 12 characters long")},
		{"non-hex", docker("cluster_id", "2489e9ad-2ee2-8e00-8ec9-32d5f69181cz"), uuidErr("2489e9ad-2ee2-8e00-8ec9-32d5f69181cz", "non-hex character 'z'")},
		{"braces", docker("cluster_id", "{2489e9ad-2ee2-8e00-8ec9-32d5f69181c0}"), uuidErr("{2489e9ad-2ee2-8e00-8ec9-32d5f69181c0}", "element 1 must be 8 characters long")},
	})
}

func TestDecodeCreateName(t *testing.T) {
	nameErr := func(in string) []E { return []E{patternErr(b("name"), msgName, namePattern)} }
	runCreate(t, []createCase{
		{"empty", docker("name", ""), []E{tooShort(b("name"), 1)}},
		{"54 characters", docker("name", strings.Repeat("a", 54)), []E{tooLong(b("name"), 53)}},
		// One problem per value, as in Pydantic: the length is checked first.
		{"too long and upper case", docker("name", strings.Repeat("A", 60)), []E{tooLong(b("name"), 53)}},
		{"upper case", docker("name", "Web"), nameErr("Web")},
		{"leading dash", docker("name", "-web"), nameErr("-web")},
		{"trailing dash", docker("name", "web-"), nameErr("web-")},
		{"underscore", docker("name", "my_web"), nameErr("my_web")},
		{"dot", docker("name", "my.web"), nameErr("my.web")},
		{"space", docker("name", "my web"), nameErr("my web")},
		{"unicode", docker("name", "wéb"), nameErr("wéb")},
		{"leading digit (it names a Service)", docker("name", "1st"), nameErr("1st")},
		{"newline", docker("name", "web\n"), nameErr("web\n")},
	})
	for _, ok := range []string{"a", "web", "my-web-2", "a1st", strings.Repeat("a", 53), "a--b"} {
		mustCreate(t, docker("name", ok))
	}
}

func TestDecodeCreateBounds(t *testing.T) {
	runCreate(t, []createCase{
		{"cpu 0", docker("cpu_request", 0), []E{geErr(b("cpu_request"), 0.001)}},
		{"cpu negative", docker("cpu_request", -1), []E{geErr(b("cpu_request"), 0.001)}},
		{"cpu too many", docker("cpu_request", 1024.5), []E{leErr(b("cpu_request"), 1024)}},
		{"cpu overflow", docker("cpu_request", raw("1e10000000")), []E{leErr(b("cpu_request"), 1024)}},
		{"memory 3", docker("memory_request_mb", 3), []E{geErr(b("memory_request_mb"), 4)}},
		{"memory too much", docker("memory_request_mb", 4194305), []E{leErr(b("memory_request_mb"), 4194304)}},
		{"replicas negative", docker("replicas", -1), []E{geErr(b("replicas"), 0)}},
		{"replicas 1001", docker("replicas", 1001), []E{leErr(b("replicas"), 1000)}},
		{"replicas huge", docker("replicas", raw("1e400")), []E{leErr(b("replicas"), 1000)}},
		{"replicas beyond int64", docker("replicas", raw("99999999999999999999")), []E{leErr(b("replicas"), 1000)}},
		{"replicas of 5000 digits", docker("replicas", raw(strings.Repeat("9", 5000))), []E{
			{Type: "less_than_equal", Loc: b("replicas"), Msg: "Input should be less than or equal to 1000", Ctx: map[string]any{"le": 1000}, Input: raw("1e400")}}},
		{"replicas of -5000 digits", docker("replicas", raw("-"+strings.Repeat("9", 5000))), []E{geErr(b("replicas"), 0)}},
		{"cpu of a million digits", docker("cpu_request", raw("0.000"+strings.Repeat("1", 1000000))), []E{geErr(b("cpu_request"), 0.001)}},
		{"exponent too costly", docker("memory_request_mb", raw("1e999999")), []E{leErr(b("memory_request_mb"), 4194304)}},
		{"container_port 0", docker("container_port", 0), []E{geErr(b("container_port"), 1)}},
		{"container_port 65536", docker("container_port", 65536), []E{leErr(b("container_port"), 65535)}},
		{"storage 0", docker("storage_size_gb", 0), []E{geErr(b("storage_size_gb"), 1)}},
		{"storage 65537", docker("storage_size_gb", 65537), []E{leErr(b("storage_size_gb"), 65536)}},
		{"storage -inf", docker("storage_size_gb", raw("-1e99999999")), []E{geErr(b("storage_size_gb"), 1)}},
		{"run_as_uid root", docker("run_as_uid", 0), []E{{Type: "greater_than_equal", Loc: b("run_as_uid"), Msg: msgRoot, Ctx: map[string]any{"ge": 1}, Input: 0}}},
		{"run_as_uid negative", docker("run_as_uid", -1), []E{e("greater_than_equal", b("run_as_uid"), msgRoot, map[string]any{"ge": 1})}},
		{"run_as_uid 2^31", docker("run_as_uid", 2147483648), []E{leErr(b("run_as_uid"), 2147483647)}},
		{"sizeGb 0", docker("volumes", []any{map[string]any{"path": "/a", "sizeGb": 0}}), []E{geErr(b("volumes", 0, "sizeGb"), 1)}},
		{"sizeGb 65537", docker("volumes", []any{map[string]any{"path": "/a", "sizeGb": 65537}}), []E{leErr(b("volumes", 0, "sizeGb"), 65536)}},
	})
	// A number too small for math/big reads as 0, as Python's json reads it.
	s := mustCreate(t, docker("replicas", raw("1e-99999999")))
	if *s.Replicas != 0 {
		t.Errorf("replicas %d, want 0", *s.Replicas)
	}
}

func TestDecodeCreateStringLimits(t *testing.T) {
	runCreate(t, []createCase{
		{"docker_image empty", docker("docker_image", ""), []E{tooShort(b("docker_image"), 1)}},
		{"docker_image long", docker("docker_image", strings.Repeat("a", 513)), []E{tooLong(b("docker_image"), 512)}},
		{"helm_chart_name empty", helm("helm_chart_name", ""), []E{tooShort(b("helm_chart_name"), 1)}},
		{"helm_chart_version long", helm("helm_chart_version", "1.2.3-"+strings.Repeat("a", 123)), []E{tooLong(b("helm_chart_version"), 128)}},
		{"helm_repo_url long", helm("helm_repo_url", "https://"+strings.Repeat("a", 2041)), []E{tooLong(b("helm_repo_url"), 2048)}},
		{"image_update_strategy long", docker("image_update_strategy", strings.Repeat("x", 1025)), []E{tooLong(b("image_update_strategy"), 1024)}},
		{"custom_values_yaml long", docker("custom_values_yaml", "a: "+strings.Repeat("x", 262142)), []E{tooLong(b("custom_values_yaml"), 262144)}},
		{"env name long", docker("environment_variables", []any{map[string]any{"name": strings.Repeat("A", 257), "value": "x"}}), []E{tooLong(b("environment_variables", 0, "name"), 256)}},
		{"env name empty", docker("environment_variables", []any{map[string]any{"name": "", "value": "x"}}), []E{tooShort(b("environment_variables", 0, "name"), 1)}},
		{"env value long", docker("environment_variables", []any{map[string]any{"name": "A", "value": strings.Repeat("x", 65537)}}), []E{tooLong(b("environment_variables", 0, "value"), 65536)}},
		{"secret_ref long", docker("environment_variables", []any{map[string]any{"name": "A", "secret_ref": "s/" + strings.Repeat("k", 511)}}), []E{tooLong(b("environment_variables", 0, "secret_ref"), 512)}},
		{"volume path long", docker("volumes", []any{map[string]any{"path": "/" + strings.Repeat("p", 1024)}}), []E{tooLong(b("volumes", 0, "path"), 1024)}},
		{"volume path empty", docker("volumes", []any{map[string]any{"path": ""}}), []E{tooShort(b("volumes", 0, "path"), 1)}},
		{"volume purpose long", docker("volumes", []any{map[string]any{"path": "/a", "purpose": strings.Repeat("p", 257)}}), []E{tooLong(b("volumes", 0, "purpose"), 256)}},
		{"health_check_path long", docker("config", map[string]any{"health_check_path": "/" + strings.Repeat("h", 1024)}), []E{tooLong(b("config", "health_check_path"), 1024)}},
		{"command item long", docker("config", map[string]any{"command": []any{strings.Repeat("c", 4097)}}), []E{tooLong(b("config", "command", 0), 4096)}},
		// Lengths count characters, not bytes.
		{"name of 53 runes", docker("name", strings.Repeat("é", 53)), []E{patternErr(b("name"), msgName, namePattern)}},
	})
}

func TestDecodeCreateListLimits(t *testing.T) {
	envs := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"name": fmt.Sprintf("V%d", i), "value": "x"}
		}
		return out
	}
	vols := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"path": fmt.Sprintf("/v%d", i)}
		}
		return out
	}
	strs := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = "x"
		}
		return out
	}
	runCreate(t, []createCase{
		{"256 env vars", docker("environment_variables", envs(256)), nil},
		{"257 env vars", docker("environment_variables", envs(257)), []E{listTooLong(b("environment_variables"), 256, 257)}},
		{"32 volumes", docker("volumes", vols(32)), nil},
		{"33 volumes", docker("volumes", vols(33)), []E{listTooLong(b("volumes"), 32, 33)}},
		{"65 command items", docker("config", map[string]any{"command": strs(65)}), []E{listTooLong(b("config", "command"), 64, 65)}},
		{"257 args", docker("config", map[string]any{"args": strs(257)}), []E{listTooLong(b("config", "args"), 256, 257)}},
		{"empty lists", docker("environment_variables", []any{}, "volumes", []any{}, "config", map[string]any{"command": []any{}}), nil},
	})
}

func TestDecodeCreatePatterns(t *testing.T) {
	env := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return docker("environment_variables", []any{m})
	}
	vol := func(p string) string { return docker("volumes", []any{map[string]any{"path": p}}) }
	runCreate(t, []createCase{
		{"env name digit first", env("name", "1A", "value", "x"), []E{patternErr(b("environment_variables", 0, "name"), msgEnvName, envNamePattern)}},
		{"env name dash", env("name", "MY-VAR", "value", "x"), []E{patternErr(b("environment_variables", 0, "name"), msgEnvName, envNamePattern)}},
		{"env name dot", env("name", "a.b", "value", "x"), []E{patternErr(b("environment_variables", 0, "name"), msgEnvName, envNamePattern)}},
		{"env name space", env("name", "A B", "value", "x"), []E{patternErr(b("environment_variables", 0, "name"), msgEnvName, envNamePattern)}},
		{"secret_ref no key", env("name", "A", "secret_ref", "db"), []E{patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"secret_ref empty key", env("name", "A", "secret_ref", "db/"), []E{patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"secret_ref upper-case secret", env("name", "A", "secret_ref", "DB/password"), []E{patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"secret_ref two slashes", env("name", "A", "secret_ref", "db/pass/word"), []E{patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"secret_ref empty", env("name", "A", "secret_ref", ""), []E{patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern)}},
		{"volume relative", vol("data"), []E{patternErr(b("volumes", 0, "path"), msgAbsPath, pathPattern)}},
		{"volume space", vol("/my data"), []E{patternErr(b("volumes", 0, "path"), msgAbsPath, pathPattern)}},
		{"health_check_path relative", docker("config", map[string]any{"health_check_path": "healthz"}), []E{patternErr(b("config", "health_check_path"), msgHealthPath, pathPattern)}},
		{"storage_mount_path relative", docker("config", map[string]any{"storage_mount_path": "data"}), []E{patternErr(b("config", "storage_mount_path"), msgAbsPath, pathPattern)}},
		{"image upper case", docker("docker_image", "NGINX"), []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"image space", docker("docker_image", "nginx latest"), []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"image scheme", docker("docker_image", "https://ghcr.io/a/b"), []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"image short digest", docker("docker_image", "nginx@sha256:abc"), []E{patternErr(b("docker_image"), msgImage, imagePattern)}},
		{"repo ftp", helm("helm_repo_url", "ftp://charts.example.com"), []E{patternErr(b("helm_repo_url"), msgRepoURL, repoURLPattern)}},
		{"repo no host", helm("helm_repo_url", "https://"), []E{patternErr(b("helm_repo_url"), msgRepoURL, repoURLPattern)}},
		{"repo bare", helm("helm_repo_url", "charts.example.com"), []E{patternErr(b("helm_repo_url"), msgRepoURL, repoURLPattern)}},
		{"chart name space", helm("helm_chart_name", "my chart"), []E{patternErr(b("helm_chart_name"), msgChartName, chartNamePattern)}},
		{"chart name slash", helm("helm_chart_name", "bitnami/redis"), []E{patternErr(b("helm_chart_name"), msgChartName, chartNamePattern)}},
		{"chart version latest", helm("helm_chart_version", "latest"), []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
		{"chart version range", helm("helm_chart_version", "^1.2.0"), []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
		{"chart version two parts", helm("helm_chart_version", "1.2"), []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
		{"chart version leading zero", helm("helm_chart_version", "01.2.3"), []E{patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern)}},
	})
	for _, img := range []string{"nginx", "nginx:1.27", "library/nginx:1.27-alpine", "ghcr.io/org/app:v1.2.3",
		"localhost:5000/app", "registry.example.com/team/app_x/worker-2:latest",
		"ghcr.io/org/app@sha256:" + strings.Repeat("a", 64), "ghcr.io/org/app:1.0@sha256:" + strings.Repeat("0", 64)} {
		mustCreate(t, docker("docker_image", img))
	}
	for _, kv := range [][2]string{{"helm_repo_url", "http://charts.local"}, {"helm_repo_url", "oci://ghcr.io/org/charts"},
		{"helm_repo_url", "https://charts.example.com:8443/stable?x=1"}, {"helm_chart_name", "kube-prometheus-stack"},
		{"helm_chart_name", "Chart_1.x"}, {"helm_chart_version", "v1.2.3"}, {"helm_chart_version", "1.2.3-rc.1+build.5"},
		{"helm_chart_version", "0.0.0"}} {
		mustCreate(t, helm(kv[0], kv[1]))
	}
	for _, ok := range []string{"db/password", "my-db.v1/PASSWORD_1", "a/b.c-d_e", "0/x"} {
		mustCreate(t, env("name", "A", "secret_ref", ok))
	}
	for _, ok := range []string{"A", "_", "a1", "http_proxy", "_X_1"} {
		mustCreate(t, env("name", ok, "value", "v"))
	}
}

// TestDecodeCreateErrorOrder checks that many problems come in the order of
// the API's fields, the same every time (the validator works in map order).
func TestDecodeCreateErrorOrder(t *testing.T) {
	in := `{"zeta": 1, "name": "Web", "alpha": 2, "replicas": -1, "cluster_id": "x", "app_type": "x",
		"config": {"zz": 1, "ingress": "no", "aa": 2, "health_check_path": "x"},
		"environment_variables": [{"name": "A", "value": "1"}, {"name": "A"}, 5, {"name": "1B", "value": "x", "extra": 1}],
		"volumes": [{"path": "/a"}, {"path": "/a/"}, {"path": "/a"}, {"sizeGb": 0}],
		"docker_image": "UPPER", "helm_chart_name": "x", "custom_values_yaml": "- a", "mmm": 3}`
	want := []E{
		e("uuid_parsing", b("cluster_id"), "Input should be a valid UUID, must have 5 elements", map[string]any{"error": "must have 5 elements"}),
		patternErr(b("name"), msgName, namePattern),
		e("enum", b("app_type"), "Input should be "+msgAppTypes, map[string]any{"expected": msgAppTypes}),
		patternErr(b("docker_image"), msgImage, imagePattern),
		geErr(b("replicas"), 0),
		valueErr(b("volumes", 1, "path"), "path should be clean: no '.', '..', '//' or trailing '/' (did you mean '/a'?)"),
		valueErr(b("volumes", 2, "path"), "path '/a' is already used by volumes[0]"),
		e("missing", b("volumes", 3, "path"), msgMissing, nil),
		geErr(b("volumes", 3, "sizeGb"), 1),
		valueErr(b("environment_variables", 1), "set exactly one of value or secret_ref"),
		valueErr(b("environment_variables", 1, "name"), "duplicate environment variable name 'A' (first at index 0)"),
		typeErr("model_attributes_type", b("environment_variables", 2)),
		patternErr(b("environment_variables", 3, "name"), msgEnvName, envNamePattern),
		e("extra_forbidden", b("environment_variables", 3, "extra"), msgExtra, nil),
		e("extra_forbidden", b("config", "aa"), msgExtra, nil),
		patternErr(b("config", "health_check_path"), msgHealthPath, pathPattern),
		typeErr("bool_type", b("config", "ingress")),
		e("extra_forbidden", b("config", "zz"), msgExtra, nil),
		valueErr(b("helm_chart_name"), "helm_chart_name is only used when deployment_type is 'helm'"),
		valueErr(b("custom_values_yaml"), "custom_values_yaml should be a YAML mapping of chart values, not a list"),
		e("extra_forbidden", b("alpha"), msgExtra, nil),
		e("extra_forbidden", b("mmm"), msgExtra, nil),
		e("extra_forbidden", b("zeta"), msgExtra, nil),
	}
	_, first := DecodeCreate([]byte(in))
	checkErrs(t, first, want)
	for range 50 {
		_, again := DecodeCreate([]byte(in))
		if jsonString(again) != jsonString(first) {
			t.Fatalf("errors changed between runs:\n%s\nthen\n%s", dumpErrs(first), dumpErrs(again))
		}
	}
}

// TestDecodeCreateSeedExample runs the example body of Mengi's reference
// page: every placeholder "example" is wrong somewhere.
func TestDecodeCreateSeedExample(t *testing.T) {
	in := `{ "cluster_id": "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", "name": "example", "app_type": "web_app", "config": {}, "cpu_request": 0.5, "memory_request_mb": 512, "replicas": 1, "container_port": 8080, "environment_variables": [ { "name": "example", "value": "example", "secret_ref": "example" } ], "storage_size_gb": 1, "volumes": [ { "path": "example", "sizeGb": 10, "purpose": "example" } ], "run_as_uid": 1, "docker_image": "example", "deployment_type": "docker", "helm_repo_url": "example", "helm_chart_name": "example", "helm_chart_version": "example", "custom_values_yaml": "example" }`
	_, errs := DecodeCreate([]byte(in))
	checkErrs(t, errs, []E{
		patternErr(b("volumes", 0, "path"), msgAbsPath, pathPattern),
		patternErr(b("environment_variables", 0, "secret_ref"), msgSecretRef, secretRefPattern),
		patternErr(b("helm_repo_url"), msgRepoURL, repoURLPattern),
		valueErr(b("helm_chart_name"), "helm_chart_name is only used when deployment_type is 'helm'"),
		patternErr(b("helm_chart_version"), msgChartVer, chartVerPattern),
		valueErr(b("custom_values_yaml"), "custom_values_yaml should be a YAML mapping of chart values, not a string"),
	})
}
