package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// bodyLoc is the location prefix of request bodies.
var bodyLoc = []any{"body"}

// DecodeCreate parses and validates the JSON body of `POST /deployments`.
// It applies the defaults (app_type `helm`, deployment_type `docker`, a
// volume's sizeGb 10) and returns every problem found, located under "body".
func DecodeCreate(body []byte) (*Spec, Errors) {
	doc, errs := parseJSON(body)
	if errs != nil {
		return nil, errs
	}
	errs = checkSchema(schemas().create, doc, bodyLoc)
	if _, ok := doc.(map[string]any); !ok {
		return nil, errs
	}
	var spec Spec
	if err := decodeValid(doc, errs, bodyLoc, &spec); err != nil {
		return nil, append(errs, *err)
	}
	spec.applyDefaults()
	errs = append(errs, spec.check(bodyLoc, errs)...)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return &spec, nil
}

// DecodeKeyCreate parses and validates the JSON body of `POST /keys`; an
// expiry must lie after now (Pydantic's FutureDatetime).
func DecodeKeyCreate(body []byte, now time.Time) (*KeyCreate, Errors) {
	doc, errs := parseJSON(body)
	if errs != nil {
		return nil, errs
	}
	errs = checkSchema(schemas().keyCreate, doc, bodyLoc)
	var k KeyCreate
	if err := decodeValid(doc, errs, bodyLoc, &k); err != nil {
		return nil, append(errs, *err)
	}
	if k.ExpiresAt != nil && !k.ExpiresAt.After(now) {
		obj, _ := doc.(map[string]any)
		errs = append(errs, FieldError{Type: "datetime_future", Loc: []any{"body", "expires_at"},
			Msg: "Input should be in the future", Input: obj["expires_at"]})
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return &k, nil
}

// Update is a validated `PATCH /deployments/{id}` body: the fields that were
// present (null included) and their values.
type Update struct {
	// Fields lists the keys present in the body, in the spec's field order (see SpecFields).
	Fields []string
	values Spec
}

// Has reports whether the body set field (possibly to null).
func (u *Update) Has(field string) bool {
	for _, f := range u.Fields {
		if f == field {
			return true
		}
	}
	return false
}

// DecodeUpdate parses and validates the JSON body of PATCH. Fields fixed at
// creation are refused as `extra_forbidden`, saying why.
func DecodeUpdate(body []byte) (*Update, Errors) {
	doc, errs := parseJSON(body)
	if errs != nil {
		return nil, errs
	}
	errs = checkSchema(schemas().update, doc, bodyLoc)
	var u Update
	if err := decodeValid(doc, errs, bodyLoc, &u.values); err != nil {
		return nil, append(errs, *err)
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	obj, _ := doc.(map[string]any)
	for _, f := range specFieldOrder {
		if _, ok := obj[f]; ok {
			u.Fields = append(u.Fields, f)
		}
	}
	return &u, nil
}

// Apply returns spec with the update's fields set and checks the result
// against the semantic rules, so a change that leaves the deployment
// inconsistent (say, clearing docker_image) is refused at its field.
func (u *Update) Apply(spec Spec) (Spec, Errors) {
	out := spec
	for _, f := range u.Fields {
		copyField(&out, &u.values, f)
	}
	// applyDefaults writes into Volumes: give out its own copy so that
	// neither spec nor the update is changed.
	out.Volumes = slices.Clone(out.Volumes)
	out.applyDefaults()
	return out, out.check(bodyLoc, nil)
}

// Changed lists the fields whose value differs between a and b, in the
// spec's field order. An empty list or object is no different from an unset
// one: both leave the field out of the file (and of Digest).
func Changed(a, b Spec) []string {
	var out []string
	for _, f := range specFieldOrder {
		if !bytes.Equal(fieldJSON(&a, f), fieldJSON(&b, f)) {
			out = append(out, f)
		}
	}
	return out
}

func fieldJSON(s *Spec, field string) []byte {
	v, _ := json.Marshal(fieldValue(s, field))
	if string(v) == "[]" || string(v) == "{}" {
		return []byte("null")
	}
	return v
}

// Digest identifies the spec's content; the agent records the digest of the
// spec it applied, so a later change shows as pending until it is applied.
func (s *Spec) Digest() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// applyDefaults fills in the defaults and puts values in canonical form.
func (s *Spec) applyDefaults() {
	// A UUID is the same in either case (Mengi's own example is upper case);
	// it names a folder in Git, so keep one spelling.
	s.ClusterID = strings.ToLower(s.ClusterID)
	if s.AppType == "" {
		s.AppType = AppHelm
	}
	if s.DeploymentType == "" {
		s.DeploymentType = TypeDocker
	}
	for i := range s.Volumes {
		if s.Volumes[i].SizeGb == 0 {
			s.Volumes[i].SizeGb = DefaultVolumeSizeGb
		}
	}
}

// parseJSON reads a request body into generic JSON values, numbers kept
// exact, or reports a `json_invalid` error at the failing byte offset.
func parseJSON(body []byte) (any, Errors) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	if err == nil {
		end := int(dec.InputOffset())
		if _, extra := dec.Token(); extra != io.EOF {
			// Locate the extra data where it starts, as Python's json does.
			offset := end + len(body[end:]) - len(bytes.TrimLeft(body[end:], " \t\r\n"))
			return nil, Errors{{Type: "json_invalid", Loc: []any{"body", offset}, Msg: "JSON decode error",
				Input: map[string]any{}, Ctx: map[string]any{"error": "extra data after the JSON value"}}}
		}
		return readNumbers(doc), nil
	}
	offset := 0
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = int(se.Offset)
		if strings.HasPrefix(se.Error(), "invalid character") && offset > 0 {
			offset-- // Offset counts the offending byte; Python points at it
		}
	} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		offset = len(body)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.EOF) {
		msg = "Expecting value"
	}
	return nil, Errors{{Type: "json_invalid", Loc: []any{"body", offset}, Msg: "JSON decode error",
		Input: map[string]any{}, Ctx: map[string]any{"error": msg}}}
}

// decodeValid decodes the parts of doc that passed the schema into dst:
// values with errors are dropped first, so the semantic rules can still run
// on the valid fields.
func decodeValid(doc any, errs Errors, prefix []any, dst any) *FieldError {
	obj, ok := deepCopy(doc).(map[string]any)
	if !ok {
		return nil
	}
	for _, e := range errs {
		dropAt(obj, e.Loc[len(prefix):])
	}
	normalizeNumbers(obj)
	b, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	if err != nil {
		return &FieldError{Type: "value_error", Loc: prefix, Msg: "Value error, " + err.Error()}
	}
	return nil
}

// dropAt removes the value at l from doc (array elements become null so
// that indices stay put).
func dropAt(doc any, l []any) {
	if len(l) == 0 {
		return
	}
	switch c := doc.(type) {
	case map[string]any:
		k, _ := l[0].(string)
		if len(l) == 1 {
			delete(c, k)
			return
		}
		dropAt(c[k], l[1:])
	case []any:
		i, _ := l[0].(int)
		if i < 0 || i >= len(c) {
			return
		}
		if len(l) == 1 {
			c[i] = nil
			return
		}
		dropAt(c[i], l[1:])
	}
}

// maxIntDigits is the longest integer Python reads from text (its
// int_max_str_digits); Pydantic's json never sees a longer one.
const maxIntDigits = 4300

// readNumbers gives every number of a parsed body the value Python's json
// would: a literal with a fraction or an exponent is a float64 (an overflow
// is infinite, here ±1e400, beyond every bound of the schema; an underflow
// is 0), an integer literal is exact. This also keeps math/big, which the
// validator compares numbers with, away from literals that would cost it
// seconds (1e1000000, a million digits) or that it cannot read at all and
// would crash on (1e10000000).
func readNumbers(v any) any {
	switch c := v.(type) {
	case map[string]any:
		for k, x := range c {
			c[k] = readNumbers(x)
		}
	case []any:
		for i, x := range c {
			c[i] = readNumbers(x)
		}
	case json.Number:
		s := string(c)
		if !strings.ContainsAny(s, ".eE") {
			if len(s) <= maxIntDigits {
				return c
			}
			if strings.HasPrefix(s, "-") {
				return json.Number("-1e400")
			}
			return json.Number("1e400")
		}
		f, _ := strconv.ParseFloat(s, 64) // a syntax error is impossible after json
		switch {
		case math.IsInf(f, 1):
			return json.Number("1e400")
		case math.IsInf(f, -1):
			return json.Number("-1e400")
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return v
}

// normalizeNumbers rewrites integral numbers written with a fraction or an
// exponent (1.0, 1e3) as plain integers in place: JSON Schema and Pydantic
// take them as integers, encoding/json does not decode them into int64.
func normalizeNumbers(v any) {
	switch c := v.(type) {
	case map[string]any:
		for k, x := range c {
			if n, ok := x.(json.Number); ok {
				c[k] = integralNumber(n)
			} else {
				normalizeNumbers(x)
			}
		}
	case []any:
		for i, x := range c {
			if n, ok := x.(json.Number); ok {
				c[i] = integralNumber(n)
			} else {
				normalizeNumbers(x)
			}
		}
	}
}

func integralNumber(n json.Number) json.Number {
	if _, err := n.Int64(); err == nil {
		return n
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
		return n
	}
	return json.Number(strconv.FormatInt(int64(f), 10))
}

// deepCopy copies maps and slices of a generic JSON value.
func deepCopy(v any) any {
	switch c := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, x := range c {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, x := range c {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
