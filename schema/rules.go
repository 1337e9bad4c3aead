package schema

import (
	"fmt"
	"path"
	"slices"
	"strings"

	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// MaxCustomValuesBytes bounds custom_values_yaml.
const MaxCustomValuesBytes = 256 << 10

// MaxFileBytes bounds a deployment file: the largest an API request can
// make (its body is at most 1 MiB) with the status the agent adds, with
// room to spare. A larger file is refused before it is parsed.
const MaxFileBytes = 4 << 20

// check applies the rules the JSON Schema cannot express. A rule is skipped
// when the schema already reported a problem at the location it checks, so
// each problem is reported once.
func (s *Spec) check(prefix []any, prior Errors) Errors {
	var out Errors
	add := func(e FieldError) {
		// Skip what the schema reported at, above or below e's location, and
		// a second problem at the very same location; two rules at related
		// locations (a duplicate name and its entry's value/secret_ref) both
		// report.
		if !prior.has(e.Loc) && !slices.ContainsFunc(out, func(o FieldError) bool { return slices.Equal(o.Loc, e.Loc) }) {
			out = append(out, Errors{e}.redactInputs()...)
		}
	}
	valueErr := func(l []any, input any, format string, args ...any) {
		add(FieldError{Type: "value_error", Loc: l, Msg: "Value error, " + fmt.Sprintf(format, args...), Input: input})
	}

	seen := map[string]int{}
	for i, ev := range s.EnvironmentVariables {
		at := loc(prefix, "environment_variables", i)
		if j, dup := seen[ev.Name]; dup && ev.Name != "" {
			valueErr(loc(at, "name"), ev.Name, "duplicate environment variable name '%s' (first at index %d)", ev.Name, j)
		} else {
			seen[ev.Name] = i
		}
		if (ev.Value == nil) == (ev.SecretRef == nil) {
			valueErr(at, nil, "set exactly one of value or secret_ref")
		}
	}

	mountPathErr := func(at []any, p, what string) bool {
		switch {
		case p == "/":
			valueErr(at, p, "%s cannot be mounted at '/'", what)
		case path.Clean(p) != p:
			valueErr(at, p, "path should be clean: no '.', '..', '//' or trailing '/' (did you mean '%s'?)", path.Clean(p))
		default:
			return false
		}
		return true
	}
	if p, ok := s.Config["storage_mount_path"].(string); ok && p != "" {
		mountPathErr(loc(prefix, "config", "storage_mount_path"), p, "storage")
	}
	mounts := map[string]string{}
	if s.StorageSizeGB != nil {
		mounts[path.Clean(s.StorageMountPath())] = "storage_size_gb's volume (config.storage_mount_path)"
	}
	for i, v := range s.Volumes {
		at := loc(prefix, "volumes", i, "path")
		switch {
		case mountPathErr(at, v.Path, "a volume"):
		default:
			if other, dup := mounts[v.Path]; dup {
				valueErr(at, v.Path, "path '%s' is already used by %s", v.Path, other)
			} else {
				mounts[v.Path] = fmt.Sprintf("volumes[%d]", i)
			}
		}
	}

	if s.CustomValuesYAML != nil {
		if msg := checkValuesYAML(*s.CustomValuesYAML); msg != "" {
			valueErr(loc(prefix, "custom_values_yaml"), nil, "%s", msg)
		}
	}

	if s.ContainerPort == nil {
		for _, k := range []string{"health_check_path", "ingress"} {
			v, set := s.Config[k]
			if set && v != false && !prior.has(loc(prefix, "config", k)) {
				valueErr(loc(prefix, "config", k), v, "config.%s needs container_port", k)
			}
		}
	}
	if s.AppType == AppDatabase && (s.StorageSizeGB != nil || len(s.Volumes) > 0) && s.Replicas != nil && *s.Replicas > 1 {
		valueErr(loc(prefix, "replicas"), *s.Replicas, "a database with storage runs at most 1 replica (its pods would share one volume)")
	}

	if s.HelmRepoURL != nil && URLHasUserinfo(*s.HelmRepoURL) {
		add(FieldError{Type: "value_error", Loc: loc(prefix, "helm_repo_url"), Msg: msgURLUserinfo, Input: *s.HelmRepoURL})
	}

	if prior.has(loc(prefix, "deployment_type")) {
		return out
	}
	docker := map[string]bool{"docker_image": s.DockerImage != nil}
	helm := map[string]bool{
		"helm_repo_url":      s.HelmRepoURL != nil,
		"helm_chart_name":    s.HelmChartName != nil,
		"helm_chart_version": s.HelmChartVersion != nil,
	}
	need, refuse := docker, helm
	if s.DeploymentType == TypeHelm {
		need, refuse = helm, docker
	}
	for _, f := range []string{"docker_image", "helm_repo_url", "helm_chart_name", "helm_chart_version"} {
		if set, ok := need[f]; ok && !set {
			add(FieldError{Type: "missing", Loc: loc(prefix, f),
				Msg: fmt.Sprintf("Field required when deployment_type is '%s'", s.DeploymentType)})
		}
		if set := refuse[f]; set {
			valueErr(loc(prefix, f), fieldValue(s, f), "%s is only used when deployment_type is '%s'", f, otherType(s.DeploymentType))
		}
	}
	return out
}

func otherType(t DeploymentType) DeploymentType {
	if t == TypeHelm {
		return TypeDocker
	}
	return TypeHelm
}

// checkValuesYAML explains why a custom_values_yaml is not a YAML mapping,
// or returns "".
func checkValuesYAML(text string) string {
	if len(text) > MaxCustomValuesBytes {
		return fmt.Sprintf("custom_values_yaml is %d bytes; at most %d are allowed", len(text), MaxCustomValuesBytes)
	}
	if strings.TrimSpace(text) == "" {
		return ""
	}
	if msg := ValuesAliasProblem(text); msg != "" {
		return msg
	}
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		return "custom_values_yaml is not valid YAML: " + strings.TrimPrefix(err.Error(), "error converting YAML to JSON: yaml: ")
	}
	if _, ok := v.(map[string]any); !ok && v != nil {
		return fmt.Sprintf("custom_values_yaml should be a YAML mapping of chart values, not %s", KindOf(v))
	}
	return ""
}

// ValuesAliasProblem refuses aliases in a custom_values_yaml, as the file
// parser does: expanding them lets a few hundred kilobytes grow to
// gigabytes ("billion laughs"), at every read of the file. It reads the
// text as a YAML node tree, which keeps aliases as they are, and returns
// "" when there is none (or the text is not YAML: the decode that follows
// says why).
func ValuesAliasProblem(text string) string {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal([]byte(text), &root); err != nil {
		return ""
	}
	if n := findAlias(&root); n != nil {
		return fmt.Sprintf("custom_values_yaml uses a YAML alias ('*%s') at its line %d; aliases and anchors are not supported: write the values out", n.Value, n.Line)
	}
	return ""
}

// findAlias returns the first alias node under n, or nil.
func findAlias(n *yamlv3.Node) *yamlv3.Node {
	if n.Kind == yamlv3.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// KindOf names the YAML kind of a decoded value that should have been a
// mapping: "a list", "a string", "a boolean" or "a number".
func KindOf(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// DefaultStorageMountPath is where storage_size_gb's volume is mounted unless
// config.storage_mount_path says otherwise.
const DefaultStorageMountPath = "/data"

// StorageMountPath is where storage_size_gb's volume is mounted.
func (s *Spec) StorageMountPath() string {
	if p, ok := s.Config["storage_mount_path"].(string); ok && p != "" {
		return p
	}
	return DefaultStorageMountPath
}
