package schema

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// emitFile writes the file of a deployment straight from its JSON encoding
// j, byte for byte what the general path (toNode, then yaml.v3's encoder)
// writes, for the documents it knows how yaml.v3 writes: mappings with
// simple keys, lists, numbers, booleans, and strings that are plain,
// double-quoted without escapes, or literal blocks. For anything else it
// returns false and EncodeFile takes the general path. A write spent most
// of its CPU and garbage in the general path; TestEmitFileMatchesYAMLv3
// holds the two to the same bytes.
func emitFile(j []byte) ([]byte, bool) {
	e := &emitter{j: j, out: make([]byte, 0, len(fileHeader)+len(j)+len(j)/4)}
	e.out = append(e.out, fileHeader...)
	if !e.mapping(0, false) {
		return nil, false
	}
	e.skipSpace()
	if e.pos != len(e.j) {
		return nil, false
	}
	return e.out, true
}

// emitter reads JSON from j at pos and appends YAML to out.
type emitter struct {
	j   []byte
	pos int
	out []byte
}

func (e *emitter) skipSpace() {
	for e.pos < len(e.j) && (e.j[e.pos] == ' ' || e.j[e.pos] == '\n' || e.j[e.pos] == '\t' || e.j[e.pos] == '\r') {
		e.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (e *emitter) peek() byte {
	e.skipSpace()
	if e.pos >= len(e.j) {
		return 0
	}
	return e.j[e.pos]
}

func (e *emitter) expect(c byte) bool {
	if e.peek() != c {
		return false
	}
	e.pos++
	return true
}

func (e *emitter) indent(n int) {
	for range n {
		e.out = append(e.out, ' ')
	}
}

// mapping writes a JSON object as a block mapping whose keys sit at
// indent; inline means the first key follows a "- " already written.
func (e *emitter) mapping(indent int, inline bool) bool {
	if !e.expect('{') || e.peek() == '}' {
		return false // an empty mapping is written as {}: left to yaml.v3
	}
	for first := true; ; first = false {
		if !first && !e.expect(',') {
			return e.expect('}')
		}
		key, ok := e.string()
		if !ok || !e.expect(':') {
			return false
		}
		// A key is written in yaml.v3's simple-key context, where plain
		// style is stricter and long keys take "? ": only keys decided here.
		style := plainStyle(key)
		if (style != stylePlain && style != styleDouble) || len(key) > 100 {
			return false
		}
		if !first || !inline {
			e.indent(indent)
		}
		e.oneLine(key)
		e.out = append(e.out[:len(e.out)-1], ':') // the key's line break
		if !e.value(indent) {
			return false
		}
	}
}

// value writes the value of a mapping key at indent: after ": " when it
// is a scalar, on the next lines when it is a mapping or a list.
func (e *emitter) value(indent int) bool {
	switch e.peek() {
	case '{':
		e.out = append(e.out, '\n')
		return e.mapping(indent+2, false)
	case '[':
		e.out = append(e.out, '\n')
		return e.sequence(indent + 2)
	}
	e.out = append(e.out, ' ')
	return e.scalar(indent, false)
}

// sequence writes a JSON array as a block sequence whose dashes sit at
// indent.
func (e *emitter) sequence(indent int) bool {
	if !e.expect('[') || e.peek() == ']' {
		return false // [] is left to yaml.v3
	}
	for first := true; ; first = false {
		if !first && !e.expect(',') {
			return e.expect(']')
		}
		e.indent(indent)
		e.out = append(e.out, '-', ' ')
		switch e.peek() {
		case '{':
			if !e.mapping(indent+2, true) {
				return false
			}
		case '[':
			return false // a list in a list: left to yaml.v3
		default:
			if !e.scalar(indent, true) {
				return false
			}
		}
	}
}

// scalar writes a string, number, boolean or null, and the line break
// after it. indent is that of the key it belongs to (literal blocks are
// indented two more); a multi-line string as a list item is left to
// yaml.v3.
func (e *emitter) scalar(indent int, item bool) bool {
	switch c := e.peek(); {
	case c == '"':
		s, ok := e.string()
		if !ok {
			return false
		}
		if strings.Contains(s, "\n") {
			return !item && e.literal(s, indent)
		}
		return e.oneLine(s)
	case c == 't' || c == 'f' || c == 'n':
		for _, w := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(e.j[e.pos:min(len(e.j), e.pos+len(w))]), w) {
				e.out = append(e.out, w...)
				e.pos += len(w)
				e.out = append(e.out, '\n')
				return true
			}
		}
		return false
	default:
		start := e.pos
		for e.pos < len(e.j) && strings.IndexByte("-+.0123456789eE", e.j[e.pos]) >= 0 {
			e.pos++
		}
		num := string(e.j[start:e.pos])
		if !simpleNumber(num) {
			return false
		}
		e.out = append(e.out, num...)
	}
	e.out = append(e.out, '\n')
	return true
}

// oneLine writes a one-line string and a line break. Strings of letters,
// digits and ._/:@+=- are decided here; yaml.v3 writes the others on
// their own, which gives the same text as in the whole document unless it
// folds them (see foldColumn).
func (e *emitter) oneLine(s string) bool {
	switch plainStyle(s) {
	case stylePlain:
		e.out = append(e.out, s...)
	case styleDouble:
		e.out = append(e.out, '"')
		e.out = append(e.out, s...)
		e.out = append(e.out, '"')
	default:
		text, ok := scalarViaYAML(s)
		// yaml.v3 folds a string with blanks where it passes column 80:
		// take its text only when it ends before that here (and in the
		// probe, where it starts at column 3).
		if !ok || (strings.ContainsAny(text, " \t") && e.column()+len(text) > foldColumn) {
			return false
		}
		e.out = append(e.out, text...)
	}
	e.out = append(e.out, '\n')
	return true
}

// foldColumn is yaml.v3's line width: it breaks long strings at blanks
// past it.
const foldColumn = 80

// column is where the next byte written lands on its line.
func (e *emitter) column() int {
	return len(e.out) - 1 - bytes.LastIndexByte(e.out, '\n')
}

// scalarViaYAML returns how yaml.v3 writes the one-line string s (styled
// as restyle does) as a mapping value starting at column 3.
func scalarViaYAML(s string) (string, bool) {
	if strings.ContainsAny(s, "\n\r") || len(s) > 256 || !utf8.ValidString(s) {
		return "", false
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "v"}, v}}
	restyle(doc)
	out, err := encodeNode(doc)
	if err != nil || !bytes.HasPrefix(out, []byte("v: ")) || bytes.Count(out, []byte("\n")) != 1 {
		return "", false
	}
	return string(out[3 : len(out)-1]), true
}

// simpleNumber accepts the JSON numbers yaml.v3 writes as they are: an
// integer, or digits with a decimal point (no exponent).
func simpleNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') || !allDigits(intPart) {
		return false
	}
	return !dot || (frac != "" && allDigits(frac))
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// literal writes a multi-line string as a literal block, as yaml.v3 does
// when restyle asks for one, or reports false when yaml.v3 would choose
// otherwise or the string holds what this emitter does not handle.
func (e *emitter) literal(s string, indent int) bool {
	if strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") || strings.HasSuffix(s, " ") ||
		strings.HasSuffix(s, "\n\n") || strings.Contains(s, " \n") || yaml11Bool[strings.ToLower(s)] {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	body, chomp := s, "-"
	if strings.HasSuffix(s, "\n") {
		body, chomp = s[:len(s)-1], ""
	}
	e.out = append(e.out, '|')
	e.out = append(e.out, chomp...)
	e.out = append(e.out, '\n')
	for line := range strings.SplitSeq(body, "\n") {
		if line != "" {
			e.indent(indent + 2)
			e.out = append(e.out, line...)
		}
		e.out = append(e.out, '\n')
	}
	return true
}

// string reads a JSON string. Escapes other than the common ones are left
// to the general path.
func (e *emitter) string() (string, bool) {
	if !e.expect('"') {
		return "", false
	}
	start := e.pos
	for e.pos < len(e.j) && e.j[e.pos] != '"' && e.j[e.pos] != '\\' {
		e.pos++
	}
	if e.pos < len(e.j) && e.j[e.pos] == '"' {
		s := string(e.j[start:e.pos])
		e.pos++
		return s, true
	}
	var b strings.Builder
	b.Write(e.j[start:e.pos])
	for e.pos < len(e.j) {
		c := e.j[e.pos]
		switch {
		case c == '"':
			e.pos++
			return b.String(), true
		case c != '\\':
			b.WriteByte(c)
			e.pos++
			continue
		}
		if e.pos+1 >= len(e.j) {
			return "", false
		}
		switch esc := e.j[e.pos+1]; esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'u':
			if e.pos+6 > len(e.j) {
				return "", false
			}
			r, err := strconv.ParseUint(string(e.j[e.pos+2:e.pos+6]), 16, 32)
			if err != nil || utf8.RuneLen(rune(r)) < 0 || (r >= 0xd800 && r < 0xe000) {
				return "", false
			}
			b.WriteRune(rune(r))
			e.pos += 4
		default:
			return "", false
		}
		e.pos += 2
	}
	return "", false
}

// scalarStyle is how yaml.v3 writes a one-line string.
type scalarStyle int

const (
	styleOther  scalarStyle = iota // not known here: the general path decides
	stylePlain                     // as it is
	styleDouble                    // in double quotes, nothing escaped
)

// plainStyle says how yaml.v3 (after restyle) writes the one-line string
// s, for strings of letters, digits and ._/:@+=- that start with a letter,
// a digit, "/", "_" or "."; styleOther for every other string.
func plainStyle(s string) scalarStyle {
	if s == "" {
		return styleDouble
	}
	if c := s[0]; !(isLetter(c) || isDigit(c) || c == '/' || c == '_' || c == '.') || strings.HasPrefix(s, "...") || s[len(s)-1] == ':' {
		return styleOther
	}
	for i := range len(s) {
		if c := s[i]; !(isLetter(c) || isDigit(c) || strings.IndexByte("._/:@+=-", c) >= 0) {
			return styleOther
		}
	}
	switch {
	case yaml11Bool[strings.ToLower(s)] || resolvedWords[s]:
		return styleDouble // restyle's YAML 1.1 booleans; true, null, .inf...
	case isLetter(s[0]) || s[0] == '/' || s[0] == '_':
		return stylePlain // not a number, timestamp or word yaml.v3 resolves
	case isUUID(s):
		return stylePlain
	case isTimestamp(s):
		if _, err := time.Parse("2006-1-2T15:4:5.999999999Z07:00", s); err == nil {
			return styleDouble // what yaml.v3 reads as a timestamp
		}
	}
	// Starts with a digit or a dot: ask yaml.v3 what it reads it as.
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(s), &n); err != nil || len(n.Content) != 1 || n.Content[0].Kind != yaml.ScalarNode {
		return styleOther
	}
	if n.Content[0].Tag == "!!str" {
		return stylePlain
	}
	return styleDouble
}

// resolvedWords are the plain scalars starting with a letter or a dot
// that yaml.v3 reads as something other than a string.
var resolvedWords = map[string]bool{
	"true": true, "True": true, "TRUE": true, "false": true, "False": true, "FALSE": true,
	"null": true, "Null": true, "NULL": true,
	".nan": true, ".NaN": true, ".NAN": true, ".inf": true, ".Inf": true, ".INF": true,
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || ((c|0x20) >= 'a' && (c|0x20) <= 'f') }

// isUUID matches 8-4-4-4-12 hex digits: yaml.v3 reads those as strings.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isTimestamp matches the shape of RFC 3339 times as encoding/json writes
// them (2026-11-27T05:30:00Z, with optional fraction and offset): yaml.v3
// reads those as timestamps when they are valid times.
func isTimestamp(s string) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return false
	}
	for i := range len(layout) {
		if (layout[i] == 'd' && !isDigit(s[i])) || (layout[i] != 'd' && s[i] != layout[i]) {
			return false
		}
	}
	rest := s[len(layout):]
	if strings.HasPrefix(rest, ".") {
		i := 1
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) && rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5])
}
