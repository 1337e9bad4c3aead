package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// SetStatus returns the deployment file data with its top-level `status`
// block replaced by st (appended when there is none; removed when st is
// nil). Every other byte of the file (comments, key order, formatting of
// what an engineer wrote) is kept as it is. The file need not be valid (the
// agent reports an invalid spec in status), but it must be a YAML mapping;
// the result is checked to differ from data in status only.
func SetStatus(data []byte, st *Status) ([]byte, error) {
	before, _, perr := parseYAML(data)
	if perr != nil {
		return nil, fmt.Errorf("set status: %s", perr.Msg)
	}
	if _, ok := before.(map[string]any); !ok {
		return nil, fmt.Errorf("set status: the file is not a YAML mapping")
	}
	var block []byte
	if st != nil {
		node, err := toNode(struct {
			Status *Status `json:"status"`
		}{st})
		if err != nil {
			return nil, fmt.Errorf("set status: %w", err)
		}
		if block, err = encodeNode(node); err != nil {
			return nil, fmt.Errorf("set status: %w", err)
		}
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	start, end := statusLines(lines)
	var out bytes.Buffer
	if start < 0 {
		out.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			out.WriteByte('\n')
		}
		out.Write(block)
	} else {
		for _, l := range lines[:start] {
			out.Write(l)
		}
		out.Write(block)
		for _, l := range lines[end:] {
			out.Write(l)
		}
	}
	after, _, perr := parseYAML(out.Bytes())
	if perr != nil {
		return nil, fmt.Errorf("set status: the result would not parse: %s", perr.Msg)
	}
	b, a := before.(map[string]any), after.(map[string]any)
	delete(b, "status")
	delete(a, "status")
	if !reflect.DeepEqual(b, a) {
		return nil, fmt.Errorf("set status: the file's layout is not one this edit understands (more than status would change)")
	}
	return out.Bytes(), nil
}

// ReadStatus returns the status block of a deployment file, which need not
// be valid otherwise; nil when there is none.
func ReadStatus(data []byte) (*Status, error) {
	doc, _, perr := parseYAML(data)
	if perr != nil {
		return nil, fmt.Errorf("read status: %s", perr.Msg)
	}
	m, _ := doc.(map[string]any)
	raw, ok := m["status"]
	if !ok || raw == nil {
		return nil, nil
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(j, &st); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &st, nil
}

// statusLines finds the top-level `status:` block: from its key's line up to
// the next line that starts a top-level key or comment, trailing blank lines
// left outside. It returns -1, -1 when there is no such block.
func statusLines(lines [][]byte) (int, int) {
	start := -1
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte("status:")) {
			start = i
			break
		}
	}
	if start < 0 {
		return -1, -1
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' {
			end = i
			break
		}
	}
	for end > start+1 && len(bytes.TrimSpace(lines[end-1])) == 0 {
		end--
	}
	return start, end
}
