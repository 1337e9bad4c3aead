package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/schema"
)

// MaxLimit bounds `limit` in listings.
const MaxLimit = 1000

type listQuery struct {
	skip, limit int
	clusterID   string
	status      schema.Phase
}

var phases = []schema.Phase{
	schema.PhasePending, schema.PhaseProvisioning, schema.PhasePromoting, schema.PhaseRunning,
	schema.PhaseStopped, schema.PhaseFailed, schema.PhaseError, schema.PhaseMigrating, schema.PhaseDeleting,
}

// parseListQuery reads skip, limit, cluster_id and status, reporting every
// problem the way FastAPI does (loc ["query", name]).
func parseListQuery(r *http.Request) (listQuery, error) {
	q := listQuery{limit: 100}
	vals := r.URL.Query()
	var errs schema.Errors
	// A repeated parameter counts with its last value, as in FastAPI.
	last := func(name string) string {
		if raw := vals[name]; len(raw) > 0 {
			return raw[len(raw)-1]
		}
		return ""
	}
	intParam := func(name string, dst *int, min, max int) {
		if !vals.Has(name) {
			return
		}
		s := last(name)
		n, err := strconv.Atoi(strings.TrimSpace(s))
		switch {
		case err != nil:
			errs = append(errs, schema.FieldError{Type: "int_parsing", Loc: []any{"query", name},
				Msg: "Input should be a valid integer, unable to parse string as an integer", Input: s})
		case n < min:
			errs = append(errs, schema.FieldError{Type: "greater_than_equal", Loc: []any{"query", name},
				Msg: "Input should be greater than or equal to " + strconv.Itoa(min), Input: s, Ctx: map[string]any{"ge": min}})
		case n > max:
			errs = append(errs, schema.FieldError{Type: "less_than_equal", Loc: []any{"query", name},
				Msg: "Input should be less than or equal to " + strconv.Itoa(max), Input: s, Ctx: map[string]any{"le": max}})
		default:
			*dst = n
		}
	}
	intParam("skip", &q.skip, 0, 1<<31-1)
	intParam("limit", &q.limit, 1, MaxLimit)
	if c := last("cluster_id"); vals.Has("cluster_id") {
		if u, err := uuid.Parse(c); err != nil || len(c) != 36 {
			errs = append(errs, schema.FieldError{Type: "uuid_parsing", Loc: []any{"query", "cluster_id"},
				Msg: "Input should be a valid UUID", Input: c})
		} else {
			q.clusterID = u.String()
		}
	}
	if st := last("status"); vals.Has("status") {
		ok := false
		names := make([]string, len(phases))
		for i, p := range phases {
			names[i] = "'" + string(p) + "'"
			ok = ok || string(p) == st
		}
		if !ok {
			want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
			errs = append(errs, schema.FieldError{Type: "enum", Loc: []any{"query", "status"},
				Msg: "Input should be " + want, Input: st, Ctx: map[string]any{"expected": want}})
		}
		q.status = schema.Phase(st)
	}
	if errs != nil {
		return q, validation(errs)
	}
	return q, nil
}

// pathID reads the {id} path parameter as a UUID, in canonical lowercase
// form, or reports `uuid_parsing` at ["path", "id"] as FastAPI does.
func pathID(r *http.Request) (string, error) {
	raw := r.PathValue("id")
	u, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return "", validation(schema.Errors{{Type: "uuid_parsing", Loc: []any{"path", "id"},
			Msg: "Input should be a valid UUID, " + uuidProblem(raw, err), Input: raw}})
	}
	return u.String(), nil
}

func uuidProblem(raw string, err error) string {
	if len(raw) != 36 {
		return fmt.Sprintf("invalid length: expected 36 characters, found %d", len(raw))
	}
	return "invalid character: expected hexadecimal digits and '-' in the form 8-4-4-4-12"
}
