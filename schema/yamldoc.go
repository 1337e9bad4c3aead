package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// lineMap records the line of every value of a YAML document by location.
type lineMap map[string]int

func locKey(l []any) string {
	var b strings.Builder
	for _, p := range l {
		fmt.Fprintf(&b, "/%v", p)
	}
	return b.String()
}

// find returns the line of l, or of its nearest ancestor that has one.
func (m lineMap) find(l []any) int {
	for n := len(l); n >= 0; n-- {
		if line, ok := m[locKey(l[:n])]; ok {
			return line
		}
	}
	return 0
}

// parseYAML reads one YAML document into JSON-compatible values (numbers as
// json.Number) and the line of each value. Duplicate keys, non-string keys,
// merge keys, aliases, several documents and non-finite numbers are refused.
func parseYAML(data []byte) (any, lineMap, *FieldError) {
	var root yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &FieldError{Type: "yaml_invalid", Msg: "YAML error: the file holds no document", Line: 1}
		}
		return nil, nil, yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, nil, &FieldError{Type: "yaml_invalid", Msg: "YAML error: a deployment file holds one document; found a second '---'", Line: extra.Line}
	case !errors.Is(err, io.EOF):
		// A broken second document is still a second document: never
		// accept the first one while ignoring what follows it.
		return nil, nil, yamlError(err)
	}
	lines := lineMap{}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" {
		return nil, nil, &FieldError{Type: "yaml_invalid", Msg: "YAML error: the document is empty", Line: 1}
	}
	v, ferr := nodeValue(n, nil, lines)
	if ferr != nil {
		return nil, nil, ferr
	}
	return v, lines, nil
}

func yamlError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, tail, _ := strings.Cut(rest, ":")
		line, _ = strconv.Atoi(num)
		msg = strings.TrimSpace(tail)
	}
	return &FieldError{Type: "yaml_invalid", Msg: "YAML error: " + msg, Line: line}
}

func nodeValue(n *yaml.Node, l []any, lines lineMap) (any, *FieldError) {
	lines[locKey(l)] = n.Line
	bad := func(format string, args ...any) (any, *FieldError) {
		return nil, &FieldError{Type: "yaml_invalid", Loc: l, Msg: "YAML error: " + fmt.Sprintf(format, args...), Line: n.Line}
	}
	switch n.Kind {
	case yaml.AliasNode:
		// Expanding aliases would let a small file grow exponentially
		// ("billion laughs"), and a value's line would be its anchor's.
		return bad("aliases ('*%s') are not supported; write the value out", n.Value)
	case yaml.MappingNode:
		obj := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			badKey := func(format string, args ...any) (any, *FieldError) {
				return nil, &FieldError{Type: "yaml_invalid", Loc: l, Msg: "YAML error: " + fmt.Sprintf(format, args...), Line: k.Line}
			}
			switch {
			case k.Kind == yaml.SequenceNode:
				return badKey("keys should be strings, found a list")
			case k.Kind == yaml.MappingNode:
				return badKey("keys should be strings, found a mapping")
			case k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!merge"):
				return badKey("keys should be strings, found %q", k.Value)
			}
			if k.Tag == "!!merge" {
				return badKey("merge keys ('<<') are not supported")
			}
			if _, dup := obj[k.Value]; dup {
				return nil, &FieldError{Type: "yaml_invalid", Loc: loc(l, k.Value),
					Msg: fmt.Sprintf("YAML error: key %q appears twice", k.Value), Line: k.Line}
			}
			v, err := nodeValue(val, loc(l, k.Value), lines)
			if err != nil {
				return nil, err
			}
			lines[locKey(loc(l, k.Value))] = k.Line
			obj[k.Value] = v
		}
		return obj, nil
	case yaml.SequenceNode:
		arr := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := nodeValue(c, loc(l, i), lines)
			if err != nil {
				return nil, err
			}
			arr[i] = v
		}
		return arr, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return bad("%v", err)
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return bad("integer %s is out of range", n.Value)
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return bad("%s is not a finite number", n.Value)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default:
			return n.Value, nil
		}
	}
	return bad("unexpected YAML node")
}
