package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem with an input, in the shape of a FastAPI/Pydantic
// v2 validation error: Type is the machine-readable kind (`missing`,
// `extra_forbidden`, `int_type`, `value_error`, ...), Loc the path to the
// offending value (starting with "body" for request bodies), Msg the
// human-readable message, Input the offending value and Ctx the constraint.
type FieldError struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input,omitempty"`
	Ctx   map[string]any `json:"ctx,omitempty"`
	// Line is the 1-based line of a YAML file the problem was found on (0 when
	// unknown or not a file).
	Line int `json:"-"`
}

// Field renders Loc without its leading source ("body", "query"), joined
// with dots and brackets, e.g. `volumes[0].path`.
func (e FieldError) Field() string {
	var b strings.Builder
	for i, p := range e.Loc {
		switch v := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if i == 0 && (v == "body" || v == "query" || v == "path") {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// Errors is a list of problems found in one input. It is an error when it is
// not empty.
type Errors []FieldError

// Error joins the problems into one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		f := e.Field()
		if f == "" {
			f = "(document)"
		}
		lines[i] = f + ": " + e.Msg
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when there are no problems.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// has reports whether some problem is already recorded at l, above it (a
// containing value) or below it (a part of it).
func (es Errors) has(l []any) bool {
	for _, e := range es {
		n := min(len(e.Loc), len(l))
		match := true
		for i := range n {
			if e.Loc[i] != l[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// loc builds a location from a prefix and further path elements.
func loc(prefix []any, more ...any) []any {
	out := make([]any, 0, len(prefix)+len(more))
	out = append(out, prefix...)
	return append(out, more...)
}

// sorted orders problems the way Pydantic reports them: by field, in the
// order fields are declared, unknown fields last (alphabetically).
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b FieldError) int {
		for i := range min(len(a.Loc), len(b.Loc)) {
			if c := compareLocPart(a, b, i); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(a.Loc), len(b.Loc))
	})
	return es
}

func compareLocPart(a, b FieldError, i int) int {
	ai, aInt := a.Loc[i].(int)
	bi, bInt := b.Loc[i].(int)
	if aInt && bInt {
		return cmp.Compare(ai, bi)
	}
	as, _ := a.Loc[i].(string)
	bs, _ := b.Loc[i].(string)
	// Names of equal rank (unknown keys, config keys) in alphabetical order:
	// the validator reports them in map order, which varies from run to run.
	return cmp.Or(cmp.Compare(a.rankAt(i), b.rankAt(i)), cmp.Compare(as, bs))
}

// rankAt ranks the name at Loc[i]. An unknown key ranks after every known
// one, even when it is spelled like a field of another level (`replicas`
// inside config, `sizeGb` at the top).
func (e FieldError) rankAt(i int) int {
	if e.Type == "extra_forbidden" && i == len(e.Loc)-1 {
		return 1000
	}
	name, _ := e.Loc[i].(string)
	return fieldRank(name)
}

// fieldRank orders field names: file keys, then spec fields in file order,
// then the fields of list entries; anything else after them.
func fieldRank(name string) int {
	if i := slices.Index(fileKeyOrder, name); i >= 0 {
		return i
	}
	if i, ok := specFieldIndex[name]; ok {
		return 100 + i
	}
	if i := slices.Index(entryKeyOrder, name); i >= 0 {
		return 200 + i
	}
	return 1000
}

var (
	fileKeyOrder  = []string{"body", "apiVersion", "kind", "metadata", "id", "user_id", "created_at", "updated_at", "deletion_requested_at", "spec", "status"}
	entryKeyOrder = []string{"name", "value", "secret_ref", "path", "sizeGb", "purpose"}
)
