package schema

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseYAMLValues(t *testing.T) {
	data := `# comment
s: text
q: "quoted"
i: 42
neg: -7
hex: 0x1f
oct: 0o17
f: 0.5
big: 1e20
b: true
yes_is_a_string: yes
n: null
tilde: ~
empty:
t: 2025-01-02T03:04:05Z
d: 2025-01-02
list: [1, "a", false]
map: {k: v}
tagged: !custom value
block: |
  line
`
	v, lines, ferr := parseYAML([]byte(data))
	if ferr != nil {
		t.Fatal(ferr)
	}
	want := map[string]any{
		"s": "text", "q": "quoted", "i": json.Number("42"), "neg": json.Number("-7"), "hex": json.Number("31"),
		"oct": json.Number("15"), "f": json.Number("0.5"), "big": json.Number("1e+20"), "b": true,
		"yes_is_a_string": "yes", "n": nil, "tilde": nil, "empty": nil,
		"t": "2025-01-02T03:04:05Z", "d": "2025-01-02",
		"list": []any{json.Number("1"), "a", false}, "map": map[string]any{"k": "v"},
		"tagged": "value", "block": "line\n",
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got  %#v\nwant %#v", v, want)
	}
	for l, line := range map[string]int{"": 2, "/s": 2, "/q": 3, "/list": 17, "/list/2": 17, "/map/k": 18, "/block": 20} {
		if lines[l] != line {
			t.Errorf("line of %q = %d, want %d", l, lines[l], line)
		}
	}
}

func TestLineMapFind(t *testing.T) {
	_, lines, ferr := parseYAML([]byte("spec:\n  volumes:\n    - path: /a\n      sizeGb: 1\n    - path: /b\n"))
	if ferr != nil {
		t.Fatal(ferr)
	}
	cases := []struct {
		loc  []any
		want int
	}{
		{nil, 1},
		{L("spec"), 1},
		{L("spec", "volumes"), 2},
		{L("spec", "volumes", 0), 3},
		{L("spec", "volumes", 0, "path"), 3},
		{L("spec", "volumes", 0, "sizeGb"), 4},
		{L("spec", "volumes", 1, "path"), 5},
		{L("spec", "volumes", 1, "sizeGb"), 5}, // missing: its entry's line
		{L("spec", "name"), 1},                 // missing: its parent's line
		{L("spec", "volumes", 7, "path"), 2},   // no such entry
		{L("status", "phase"), 1},
	}
	for _, c := range cases {
		if got := lines.find(c.loc); got != c.want {
			t.Errorf("find(%v) = %d, want %d", c.loc, got, c.want)
		}
	}
	if got := (lineMap{}).find(L("a")); got != 0 {
		t.Errorf("empty map: %d", got)
	}
}

func TestYAMLError(t *testing.T) {
	cases := []struct {
		err  string
		line int
		msg  string
	}{
		{"yaml: line 3: mapping values are not allowed in this context", 3, "YAML error: mapping values are not allowed in this context"},
		{"yaml: control characters are not allowed", 0, "YAML error: control characters are not allowed"},
		{"yaml: line x: odd", 0, "YAML error: odd"},
		{"something else", 0, "YAML error: something else"},
	}
	for _, c := range cases {
		got := yamlError(errors.New(c.err))
		if got.Type != "yaml_invalid" || got.Line != c.line || got.Msg != c.msg || got.Loc != nil {
			t.Errorf("yamlError(%q) = %+v", c.err, got)
		}
	}
}

func TestParseYAMLRefuses(t *testing.T) {
	cases := []struct {
		data string
		msg  string
		line int
	}{
		{"a: 1\na: 2\n", `YAML error: key "a" appears twice`, 2},
		{"a: &x [1]\nb: *x\n", "YAML error: aliases ('*x') are not supported; write the value out", 2},
		{"a: {<<: {b: 1}}\n", "YAML error: merge keys ('<<') are not supported", 1},
		{"1: a\n", `YAML error: keys should be strings, found "1"`, 1},
		{"? {a: 1}\n: x\n", "YAML error: keys should be strings, found a mapping", 1},
		{"a: .nan\n", "YAML error: .nan is not a finite number", 1},
		{"a: 9223372036854775808\n", "YAML error: integer 9223372036854775808 is out of range", 1},
		{"a: 99999999999999999999\n", "", 0}, // beyond uint64: YAML reads a float, and the schema bounds it
		{"a: 1\n---\nb: 2\n", "YAML error: a deployment file holds one document; found a second '---'", 2},
		{"", "YAML error: the file holds no document", 1},
		{"a: \xff\n", "YAML error: invalid leading UTF-8 octet", 0},
		{"a: \"\x01\"\n", "YAML error: control characters are not allowed", 0},
	}
	for _, c := range cases {
		_, _, ferr := parseYAML([]byte(c.data))
		if c.msg == "" {
			if ferr != nil {
				t.Errorf("%q: %v", c.data, ferr.Msg)
			}
			continue
		}
		if ferr == nil || ferr.Msg != c.msg || ferr.Line != c.line || ferr.Type != "yaml_invalid" {
			t.Errorf("%q: got %+v, want %q at line %d", c.data, ferr, c.msg, c.line)
		}
	}
}

// TestParseYAMLAliasBomb checks that a "billion laughs" file is refused at
// once instead of being expanded.
func TestParseYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 30; i++ {
		b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	_, errs := ParseFile([]byte(b.String()))
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "aliases") {
		t.Errorf("got %s", dumpErrs(errs))
	}
}

func itoa(i int) string { return strings.TrimSpace(jsonString(i)) }
