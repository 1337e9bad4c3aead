package schema

import (
	"bytes"
	"fmt"
	"reflect"
)

// SetStatus returns the deployment file data with its top-level `status`
// block replaced by st (appended when there is none; removed when st is
// nil). Every other byte of the file (comments, key order, formatting of
// what an engineer wrote) is kept as it is. The result is checked: it must
// parse to the same metadata and spec as data, with the new status.
func SetStatus(data []byte, st *Status) ([]byte, error) {
	before, errs := ParseFile(data)
	if errs != nil {
		return nil, fmt.Errorf("set status: the file is not valid: %w", errs)
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
	after, errs := ParseFile(out.Bytes())
	if errs != nil {
		return nil, fmt.Errorf("set status: the result would not be valid: %w", errs)
	}
	if !reflect.DeepEqual(before.Metadata, after.Metadata) || !reflect.DeepEqual(before.Spec, after.Spec) {
		return nil, fmt.Errorf("set status: the file's layout is not one this edit understands (metadata or spec would change)")
	}
	return out.Bytes(), nil
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
