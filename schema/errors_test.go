package schema

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFieldErrorField(t *testing.T) {
	cases := []struct {
		loc  []any
		want string
	}{
		{nil, ""},
		{L("body"), ""},
		{L("body", "name"), "name"},
		{L("body", "volumes", 0, "path"), "volumes[0].path"},
		{L("body", "config", "command", 3), "config.command[3]"},
		{L("query", "limit"), "limit"},
		{L("path", "id"), "id"},
		{L("spec", "volumes", 0, "path"), "spec.volumes[0].path"},
		{L("spec", "environment_variables", 12), "spec.environment_variables[12]"},
		{L("metadata", "created_at"), "metadata.created_at"},
		{L("body", 17), "[17]"},
		{L("body", "body"), "body"}, // only a leading source is dropped
		{L("status"), "status"},
	}
	for _, c := range cases {
		if got := (FieldError{Loc: c.loc}).Field(); got != c.want {
			t.Errorf("Field(%v) = %q, want %q", c.loc, got, c.want)
		}
	}
}

func TestErrorsError(t *testing.T) {
	var none Errors
	if none.Err() != nil {
		t.Error("empty Errors should give a nil error")
	}
	es := Errors{
		{Type: "missing", Loc: L("body", "name"), Msg: "Field required"},
		{Type: "yaml_invalid", Msg: "YAML error: x"},
		{Type: "value_error", Loc: L("spec", "volumes", 1, "path"), Msg: "Value error, y"},
	}
	want := "name: Field required\n(document): YAML error: x\nspec.volumes[1].path: Value error, y"
	if got := es.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err := es.Err()
	var back Errors
	if !errors.As(err, &back) || len(back) != 3 {
		t.Errorf("Err() does not unwrap to Errors: %v", err)
	}
}

// TestFieldErrorJSON checks the 422 entry shape: type, loc, msg, input and
// ctx, with input and ctx left out when empty and Line never sent.
func TestFieldErrorJSON(t *testing.T) {
	cases := []struct {
		e    FieldError
		want string
	}{
		{FieldError{Type: "missing", Loc: L("body", "name"), Msg: "Field required", Input: map[string]any{}, Line: 3},
			`{"type":"missing","loc":["body","name"],"msg":"Field required","input":{}}`},
		{FieldError{Type: "greater_than_equal", Loc: L("body", "replicas"), Msg: "m", Input: json.Number("-1"), Ctx: map[string]any{"ge": int64(0)}},
			`{"type":"greater_than_equal","loc":["body","replicas"],"msg":"m","input":-1,"ctx":{"ge":0}}`},
		{FieldError{Type: "json_invalid", Loc: L("body", 4), Msg: "JSON decode error", Input: map[string]any{}, Ctx: map[string]any{"error": "x"}},
			`{"type":"json_invalid","loc":["body",4],"msg":"JSON decode error","input":{},"ctx":{"error":"x"}}`},
	}
	for _, c := range cases {
		if got := jsonString(c.e); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestErrorsSorted(t *testing.T) {
	es := Errors{
		{Type: "extra_forbidden", Loc: L("body", "zzz")},
		{Type: "extra_forbidden", Loc: L("body", "replicas2")},
		{Type: "x", Loc: L("body", "config", "ingress")},
		{Type: "x", Loc: L("body", "config", "args")},
		{Type: "x", Loc: L("body", "volumes", 10, "path")},
		{Type: "x", Loc: L("body", "volumes", 2, "sizeGb")},
		{Type: "x", Loc: L("body", "volumes", 2, "path")},
		{Type: "x", Loc: L("body", "volumes", 2)},
		{Type: "x", Loc: L("body", "name")},
		{Type: "x", Loc: L("body", "cluster_id")},
		{Type: "extra_forbidden", Loc: L("body", "sizeGb")}, // a volume's key, at the top: unknown
		{Type: "extra_forbidden", Loc: L("body", "config", "replicas")},
		{Type: "x", Loc: L("body", "environment_variables", 0, "secret_ref")},
		{Type: "x", Loc: L("body", "environment_variables", 0, "name")},
		{Type: "x", Loc: L("body", "environment_variables", 0, "value")},
		{Type: "x", Loc: L("body")},
	}
	want := [][]any{
		L("body"),
		L("body", "cluster_id"),
		L("body", "name"),
		L("body", "volumes", 2),
		L("body", "volumes", 2, "path"),
		L("body", "volumes", 2, "sizeGb"),
		L("body", "volumes", 10, "path"),
		L("body", "environment_variables", 0, "name"),
		L("body", "environment_variables", 0, "value"),
		L("body", "environment_variables", 0, "secret_ref"),
		L("body", "config", "args"),
		L("body", "config", "ingress"),
		L("body", "config", "replicas"),
		L("body", "replicas2"),
		L("body", "sizeGb"),
		L("body", "zzz"),
	}
	got := es.sorted()
	for i := range want {
		if jsonString(got[i].Loc) != jsonString(want[i]) {
			t.Errorf("%d: %s, want %s", i, jsonString(got[i].Loc), jsonString(want[i]))
		}
	}
	// File keys come in file order.
	fs := Errors{{Loc: L("status", "phase")}, {Loc: L("spec", "name")}, {Loc: L("metadata", "id")}, {Loc: L("kind")}, {Loc: L("apiVersion")}}
	fs.sorted()
	for i, k := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if fs[i].Loc[0] != k {
			t.Errorf("file order %d: %v", i, fs[i].Loc)
		}
	}
}

func TestErrorsHas(t *testing.T) {
	es := Errors{{Loc: L("body", "volumes", 0, "path")}}
	for _, c := range []struct {
		loc  []any
		want bool
	}{
		{L("body", "volumes", 0, "path"), true},
		{L("body", "volumes", 0), true}, // above
		{L("body"), true},
		{L("body", "volumes", 0, "path", "x"), true}, // below
		{L("body", "volumes", 1, "path"), false},
		{L("body", "volumes", 0, "sizeGb"), false},
		{L("body", "name"), false},
	} {
		if got := es.has(c.loc); got != c.want {
			t.Errorf("has(%v) = %v", c.loc, got)
		}
	}
}
