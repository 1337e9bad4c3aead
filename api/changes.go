package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/mengi-cloud/gitops/schema"
)

// describeChanges writes one line per changed field for a commit body:
// `replicas: 1 -> 3`, or `custom_values_yaml: changed` for long values.
func describeChanges(old, new schema.Spec, fields []string) string {
	var lines []string
	for _, f := range fields {
		a, b := shortValue(field(old, f)), shortValue(field(new, f))
		if a == "" || b == "" {
			lines = append(lines, f+": changed")
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s -> %s", f, a, b))
	}
	return strings.Join(lines, "\n")
}

func field(s schema.Spec, name string) any {
	b, _ := json.Marshal(s)
	var m map[string]any
	json.Unmarshal(b, &m)
	v, ok := m[name]
	if !ok {
		return nil
	}
	return v
}

// shortValue renders a value for a commit body, or "" when it is too long
// to be useful there.
func shortValue(v any) string {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Map && reflect.ValueOf(v).Len() == 0) {
		return "null"
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if str, ok := v.(string); ok {
		s = str
	}
	// Control and format characters (NUL, CR, a right-to-left override)
	// would garble what an auditor reads in `git log`, and git refuses a
	// commit holding NUL: the body then says "changed".
	if len(s) > 80 || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		return ""
	}
	return s
}
