package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// checkSchema validates doc against sch and returns one FieldError per
// problem, located under prefix.
func checkSchema(sch *jsonschema.Schema, doc any, prefix []any) Errors {
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Errors{{Type: "value_error", Loc: prefix, Msg: "Value error, " + err.Error()}}
	}
	var out Errors
	seen := map[string]bool{}
	collectLeaves(ve, func(leaf *jsonschema.ValidationError) {
		for _, e := range fieldErrors(leaf, doc, prefix).redactInputs() {
			// Like Pydantic, one problem per value: the first constraint
			// that fails (an empty name is too short, not also a bad label).
			key, _ := json.Marshal(e.Loc)
			if !seen[string(key)] {
				seen[string(key)] = true
				out = append(out, e)
			}
		}
	})
	return out
}

func collectLeaves(ve *jsonschema.ValidationError, fn func(*jsonschema.ValidationError)) {
	if len(ve.Causes) == 0 {
		fn(ve)
		return
	}
	for _, c := range ve.Causes {
		collectLeaves(c, fn)
	}
}

// instanceLoc turns a JSON pointer's tokens into a Pydantic loc, with array
// indices as ints, and returns the value found there.
func instanceLoc(doc any, tokens []string, prefix []any) ([]any, any) {
	l := loc(prefix)
	v := doc
	for _, t := range tokens {
		switch c := v.(type) {
		case []any:
			i, _ := strconv.Atoi(t)
			l = append(l, i)
			if i >= 0 && i < len(c) {
				v = c[i]
			} else {
				v = nil
			}
		case map[string]any:
			l = append(l, t)
			v = c[t]
		default:
			l = append(l, t)
			v = nil
		}
	}
	return l, v
}

// modelFields are the object-valued fields that are models in Mengi's API
// (a wrong type there is `model_attributes_type`, not `dict_type`).
func isFreeFormObject(l []any) bool {
	if len(l) == 0 {
		return false
	}
	last, _ := l[len(l)-1].(string)
	return last == "config"
}

// fieldErrors maps one leaf of the validator's error tree to Pydantic-style
// entries.
func fieldErrors(leaf *jsonschema.ValidationError, doc any, prefix []any) Errors {
	l, input := instanceLoc(doc, leaf.InstanceLocation, prefix)
	one := func(typ, msg string, ctx map[string]any) Errors {
		return Errors{{Type: typ, Loc: l, Msg: msg, Input: input, Ctx: ctx}}
	}
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		var out Errors
		for _, m := range k.Missing {
			out = append(out, FieldError{Type: "missing", Loc: loc(l, m), Msg: "Field required", Input: input})
		}
		return out
	case *kind.AdditionalProperties:
		obj, _ := input.(map[string]any)
		var out Errors
		for _, p := range k.Properties {
			msg := "Extra inputs are not permitted"
			if why, ok := fixedAtCreation[p]; ok && len(l) == len(prefix) {
				msg += ": " + why
			}
			out = append(out, FieldError{Type: "extra_forbidden", Loc: loc(l, p), Msg: msg, Input: obj[p]})
		}
		return out
	case *kind.Type:
		return one(typeError(k, l))
	case *kind.Enum:
		want := quoteList(k.Want)
		return one("enum", "Input should be "+want, map[string]any{"expected": want})
	case *kind.Const:
		want := quoteList([]any{k.Want})
		return one("literal_error", "Input should be "+want, map[string]any{"expected": want})
	case *kind.Format:
		return one(formatError(k))
	case *kind.MinLength:
		return one("string_too_short", fmt.Sprintf("String should have at least %d %s", k.Want, plural(k.Want, "character")),
			map[string]any{"min_length": k.Want})
	case *kind.MaxLength:
		return one("string_too_long", fmt.Sprintf("String should have at most %d %s", k.Want, plural(k.Want, "character")),
			map[string]any{"max_length": k.Want})
	case *kind.Pattern:
		msg := fmt.Sprintf("String should match pattern '%s'", k.Want)
		if friendly, ok := patternMessages[lastField(l)]; ok {
			msg = friendly
		}
		return one("string_pattern_mismatch", msg, map[string]any{"pattern": k.Want})
	case *kind.Minimum:
		msg := "Input should be greater than or equal to " + ratString(k.Want)
		if extra, ok := minimumMessages[lastField(l)]; ok {
			msg += ": " + extra
		}
		return one("greater_than_equal", msg, map[string]any{"ge": ratValue(k.Want)})
	case *kind.Maximum:
		return one("less_than_equal", "Input should be less than or equal to "+ratString(k.Want),
			map[string]any{"le": ratValue(k.Want)})
	case *kind.MaxItems:
		return one("too_long", fmt.Sprintf("List should have at most %d %s after validation, not %d", k.Want, plural(k.Want, "item"), k.Got),
			map[string]any{"field_type": "List", "max_length": k.Want, "actual_length": k.Got})
	default:
		return one("value_error", "Value error, "+leaf.ErrorKind.LocalizedString(message.NewPrinter(language.English)), nil)
	}
}

// fixedAtCreation explains why a field of DeploymentCreate is refused by
// PATCH.
var fixedAtCreation = map[string]string{
	"cluster_id":      "cluster_id is fixed at creation (use promote to copy a deployment to another cluster)",
	"app_type":        "app_type is fixed at creation",
	"deployment_type": "deployment_type is fixed at creation",
	"helm_repo_url":   "helm_repo_url is fixed at creation",
	"helm_chart_name": "helm_chart_name is fixed at creation",
	"run_as_uid":      "run_as_uid is fixed at creation",
}

// patternMessages says in words what each field's pattern means.
var patternMessages = map[string]string{
	"name":               "String should be a DNS label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
	"env_name":           "String should be an environment variable name: letters, digits and '_', not starting with a digit",
	"secret_ref":         "String should be '<secret-name>/<key>', naming a key of a Kubernetes Secret in the deployment's namespace",
	"path":               "String should be an absolute path without spaces",
	"health_check_path":  "String should be an absolute URL path such as '/healthz'",
	"storage_mount_path": "String should be an absolute path without spaces",
	"docker_image":       "String should be a Docker image reference such as 'nginx:1.27' or 'ghcr.io/org/app@sha256:<digest>'",
	"helm_repo_url":      "String should be an http://, https:// or oci:// URL",
	"helm_chart_name":    "String should be a chart name: letters, digits, '.', '_' and '-'",
	"helm_chart_version": "String should be an exact semantic version such as '1.2.3'",
	"applied_commit":     "String should be a full 40-character commit hash",
}

var minimumMessages = map[string]string{
	"run_as_uid": "running as root (UID 0) is not allowed",
}

// lastField names the field a loc points at; an environment variable's
// name is told apart from a deployment's name.
func lastField(l []any) string {
	if len(l) == 0 {
		return ""
	}
	last, _ := l[len(l)-1].(string)
	if last == "name" && len(l) >= 3 {
		if parent, ok := l[len(l)-3].(string); ok && parent == "environment_variables" {
			return "env_name"
		}
	}
	return last
}

func typeError(k *kind.Type, l []any) (string, string, map[string]any) {
	want := ""
	for _, w := range k.Want {
		if w != "null" {
			want = w
			break
		}
	}
	switch want {
	case "string":
		return "string_type", "Input should be a valid string", nil
	case "integer":
		if k.Got == "number" {
			return "int_from_float", "Input should be a valid integer, got a number with a fractional part", nil
		}
		return "int_type", "Input should be a valid integer", nil
	case "number":
		return "float_type", "Input should be a valid number", nil
	case "boolean":
		return "bool_type", "Input should be a valid boolean", nil
	case "array":
		return "list_type", "Input should be a valid list", nil
	case "object":
		if isFreeFormObject(l) {
			return "dict_type", "Input should be a valid dictionary", nil
		}
		return "model_attributes_type", "Input should be a valid dictionary or object to extract fields from", nil
	}
	return "type_error", "Input should be of type " + strings.Join(k.Want, " or "), nil
}

func formatError(k *kind.Format) (string, string, map[string]any) {
	detail := ""
	if k.Err != nil {
		detail = ", " + k.Err.Error()
	}
	switch k.Want {
	case "uuid":
		return "uuid_parsing", "Input should be a valid UUID" + detail, map[string]any{"error": strings.TrimPrefix(detail, ", ")}
	case "date-time":
		return "datetime_parsing", "Input should be a valid datetime in RFC 3339 format" + detail, nil
	}
	return "value_error", "Value error, not a valid " + k.Want + detail, nil
}

// quoteList renders enum choices the way Pydantic does: 'a', 'b' or 'c'.
func quoteList(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprintf("'%v'", v)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func ratValue(r *big.Rat) any {
	if r.IsInt() && r.Num().IsInt64() {
		return r.Num().Int64()
	}
	f, _ := r.Float64()
	return f
}
