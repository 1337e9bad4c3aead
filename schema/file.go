package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// fileHeader opens every deployment file the API writes.
const fileHeader = "# Mengi GitOps deployment. Change metadata and spec through the API or a pull request;\n# the agent writes status.\n"

// EncodeFile renders a deployment as the YAML file stored in Git: fixed key
// order (apiVersion, kind, metadata, spec in file order, status), two-space
// indentation, multi-line strings as literal blocks, unset fields left out.
// The same deployment always gives the same bytes.
func EncodeFile(d *Deployment) ([]byte, error) {
	j, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode deployment %s: %w", d.Metadata.ID, err)
	}
	if out, ok := emitFile(j); ok {
		return out, nil
	}
	node, err := nodeOfJSON(j)
	if err != nil {
		return nil, fmt.Errorf("encode deployment %s: %w", d.Metadata.ID, err)
	}
	body, err := encodeNode(node)
	if err != nil {
		return nil, fmt.Errorf("encode deployment %s: %w", d.Metadata.ID, err)
	}
	return append([]byte(fileHeader), body...), nil
}

// encodeNode writes a YAML node with two-space indentation.
func encodeNode(node *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// toNode turns v into a YAML node with the key order of its JSON encoding
// and the plainest style that reads back the same. The node is built from
// the JSON encoding's tokens, with the tags a YAML reader would give the
// same JSON text (it used to be parsed back with the YAML parser, which
// made most of a write's garbage).
func toNode(v any) (*yaml.Node, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return nodeOfJSON(j)
}

// nodeOfJSON is toNode for a value already encoded as JSON.
func nodeOfJSON(j []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	n, err := jsonNode(dec)
	if err != nil {
		return nil, err
	}
	restyle(n)
	return n, nil
}

// jsonNode reads one JSON value from dec as a YAML node.
func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if t == '[' {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.(string)})
			}
			c, err := jsonNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(t), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

func restyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		// YAML 1.1 readers would see a boolean; and NEL, LS and PS are line
		// breaks to a YAML reader, which folds them in any style but double
		// quotes (where they are escaped).
		if yaml11Bool[strings.ToLower(n.Value)] || strings.ContainsAny(n.Value, "\u0085\u2028\u2029") {
			n.Style = yaml.DoubleQuotedStyle
		} else if strings.Contains(n.Value, "\n") {
			// The encoder writes every multi-line string as a literal block
			// unless told otherwise, and a literal block drops a leading
			// line break: quote what a block would not hold exactly.
			n.Style = yaml.DoubleQuotedStyle
			if !strings.ContainsAny(n.Value, "\r\t") && !strings.HasPrefix(n.Value, " ") && !strings.HasPrefix(n.Value, "\n") {
				n.Style = yaml.LiteralStyle
			}
		}
	}
	for _, c := range n.Content {
		restyle(c)
	}
}

// ParseFile reads and validates a deployment file. Problems are located
// under the file's keys (for example `spec.volumes[0].path`) and carry the
// line they were found on.
func ParseFile(data []byte) (*Deployment, Errors) {
	if len(data) > MaxFileBytes {
		return nil, Errors{{Type: "file_too_large", Line: 1,
			Msg: fmt.Sprintf("the file is %d bytes; a deployment file holds at most %d (%d MiB)", len(data), MaxFileBytes, MaxFileBytes>>20)}}
	}
	doc, lines, perr := parseYAML(data)
	if perr != nil {
		return nil, Errors{*perr}
	}
	errs := checkSchema(schemas().file, doc, nil)
	var d Deployment
	if err := decodeValid(doc, errs, nil, &d); err != nil {
		errs = append(errs, *err)
	} else {
		d.Spec.applyDefaults()
		errs = append(errs, d.Spec.check([]any{"spec"}, errs)...)
	}
	for i := range errs {
		errs[i].Line = lines.find(errs[i].Loc)
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return &d, nil
}

// LineOf returns the line of the field at loc (say "metadata", "user_id")
// in a deployment file, 0 when the file has no such field or does not
// parse.
func LineOf(data []byte, loc ...any) int {
	if len(data) > MaxFileBytes {
		return 0
	}
	_, lines, err := parseYAML(data)
	if err != nil {
		return 0
	}
	return lines.find(loc)
}

// yaml11Bool are the plain scalars that YAML 1.1 tools read as booleans.
var yaml11Bool = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}
