package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// listed fixture: alice has four deployments (three on prod, one on staging,
// made in this order a minute apart), bob one on prod.
type listed struct {
	e     *env
	alice []map[string]any // in creation order
	bob   map[string]any
}

func newListed(t *testing.T) *listed {
	e := newEnv(t)
	l := &listed{e: e}
	for _, d := range []struct {
		cluster bool // true: prod
		name    string
	}{{true, "web"}, {false, "web"}, {true, "api"}, {true, "db"}} {
		c := e.staging
		if d.cluster {
			c = e.prod
		}
		l.alice = append(l.alice, e.create(t, e.alice, dockerBody(c, d.name)))
		e.clock.Advance(time.Minute)
	}
	l.bob = e.create(t, e.bob, dockerBody(e.prod, "bobs"))
	return l
}

func ids(t *testing.T, l []map[string]any) []string {
	t.Helper()
	out := make([]string, len(l))
	for i, d := range l {
		out[i] = str(d, "id")
		checkKeys(t, d)
	}
	return out
}

func (l *listed) list(t *testing.T, a account, query string) []map[string]any {
	t.Helper()
	res := l.e.do(t, req{method: "GET", path: "/deployments" + query, key: a.key}).expect(t, http.StatusOK)
	if !strings.HasPrefix(string(res.body), "[") {
		t.Fatalf("not a bare JSON array: %s", res.body)
	}
	return res.list(t)
}

// TestListOwnOldestFirst: a user lists exactly their own deployments, oldest
// first, each rendered as GET renders it.
func TestListOwnOldestFirst(t *testing.T) {
	l := newListed(t)
	e := l.e
	got := l.list(t, e.alice, "")
	if !slices.Equal(ids(t, got), ids(t, l.alice)) {
		t.Fatalf("alice lists %q, want %q", ids(t, got), ids(t, l.alice))
	}
	for i, d := range got {
		checkFields(t, d, l.alice[i])
		one := e.get(t, e.alice, str(d, "id")).expect(t, http.StatusOK).object(t)
		checkFields(t, d, one)
	}
	if b := l.list(t, e.bob, ""); !slices.Equal(ids(t, b), []string{str(l.bob, "id")}) {
		t.Errorf("bob lists %q", ids(t, b))
	}

	// A user without deployments gets an empty array, not null.
	carol, _ := addUser(t, e, "carol@example.com")
	res := e.do(t, req{method: "GET", path: "/deployments", key: carol.key}).expect(t, http.StatusOK)
	if strings.TrimSpace(string(res.body)) != "[]" {
		t.Errorf("empty listing is %s, want []", res.body)
	}

	// A rename keeps the deployment's place (its age does not change).
	e.patch(t, e.alice, str(l.alice[0], "id"), map[string]any{"name": "zzz"}).expect(t, http.StatusOK)
	if got := l.list(t, e.alice, ""); !slices.Equal(ids(t, got), ids(t, l.alice)) || str(got[0], "name") != "zzz" {
		t.Errorf("after a rename alice lists %q (first named %q)", ids(t, got), str(got[0], "name"))
	}
}

// TestListPagingAndFilters covers skip, limit, cluster_id and status.
func TestListPagingAndFilters(t *testing.T) {
	l := newListed(t)
	e := l.e
	all := ids(t, l.alice)
	// Alice asks for deletion of "api" (third) so that there are two
	// statuses to filter on.
	e.delete(t, e.alice, all[2]).expect(t, http.StatusAccepted)

	cases := []struct {
		query string
		want  []string
	}{
		{"?skip=0&limit=100", all},
		{"?limit=2", all[:2]},
		{"?skip=1&limit=2", all[1:3]},
		{"?skip=3", all[3:]},
		{"?skip=4", nil},
		{"?skip=100&limit=1000", nil},
		{"?limit=1", all[:1]},
		{"?limit=1000", all},
		{"?cluster_id=" + e.prod.ID, []string{all[0], all[2], all[3]}},
		{"?cluster_id=" + strings.ToUpper(e.prod.ID), []string{all[0], all[2], all[3]}},
		{"?cluster_id=" + e.staging.ID, []string{all[1]}},
		{"?cluster_id=" + e.private.ID, nil},
		{"?cluster_id=" + e.prod.ID + "&skip=1&limit=1", []string{all[2]}},
		{"?status=pending", []string{all[0], all[1], all[3]}},
		{"?status=deleting", []string{all[2]}},
		{"?status=running", nil},
		{"?status=pending&cluster_id=" + e.prod.ID, []string{all[0], all[3]}},
		{"?status=pending&skip=1", []string{all[1], all[3]}},
		{"?unknown=1", all}, // FastAPI ignores unknown query parameters
		// A repeated parameter counts with its last value, as in FastAPI.
		{"?limit=1&limit=2", all[:2]},
		{"?status=deleting&status=pending", []string{all[0], all[1], all[3]}},
		{"?cluster_id=" + e.staging.ID + "&cluster_id=" + e.prod.ID, []string{all[0], all[2], all[3]}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			got := ids(t, l.list(t, e.alice, c.query))
			if len(got) != len(c.want) || (len(got) > 0 && !slices.Equal(got, c.want)) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	// Bob's deployment on prod never shows in alice's filtered listing.
	for _, d := range l.list(t, e.alice, "?cluster_id="+e.prod.ID+"&limit=1000") {
		if str(d, "user_id") != e.alice.user.ID {
			t.Errorf("alice sees %s of user %s", str(d, "id"), str(d, "user_id"))
		}
	}
}

// TestListQueryValidation: bad query parameters answer 422 located at
// ["query", name].
func TestListQueryValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		query string
		typ   string
		loc   []any
		msg   string
		input string
	}{
		{"?limit=1001", "less_than_equal", L("query", "limit"), "Input should be less than or equal to 1000", "1001"},
		{"?limit=0", "greater_than_equal", L("query", "limit"), "Input should be greater than or equal to 1", "0"},
		{"?limit=-5", "greater_than_equal", L("query", "limit"), "Input should be greater than or equal to 1", "-5"},
		{"?skip=-1", "greater_than_equal", L("query", "skip"), "Input should be greater than or equal to 0", "-1"},
		{"?skip=abc", "int_parsing", L("query", "skip"), "Input should be a valid integer, unable to parse string as an integer", "abc"},
		{"?limit=1.5", "int_parsing", L("query", "limit"), "Input should be a valid integer, unable to parse string as an integer", "1.5"},
		{"?limit=", "int_parsing", L("query", "limit"), "Input should be a valid integer, unable to parse string as an integer", ""},
		{"?cluster_id=abc", "uuid_parsing", L("query", "cluster_id"), "Input should be a valid UUID", "abc"},
		{"?status=sleeping", "enum", L("query", "status"), "Input should be 'pending', 'provisioning', 'promoting', 'running', 'stopped', 'failed', 'error', 'migrating' or 'deleting'", "sleeping"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			errs := e.do(t, req{method: "GET", path: "/deployments" + c.query, key: e.alice.key}).validationErrors(t)
			if len(errs) != 1 {
				t.Fatalf("%d entries, want 1: %+v", len(errs), errs)
			}
			g := errs[0]
			if g.Type != c.typ || fmtLoc(g.Loc) != fmtLoc(c.loc) || g.Msg != c.msg || g.Input != c.input {
				t.Errorf("got {%s %v %q %v}, want {%s %v %q %q}", g.Type, g.Loc, g.Msg, g.Input, c.typ, c.loc, c.msg, c.input)
			}
		})
	}
	// Every problem is reported at once.
	errs := e.do(t, req{method: "GET", path: "/deployments?skip=x&limit=5000&status=nope", key: e.alice.key}).validationErrors(t)
	var locs []string
	for _, g := range errs {
		locs = append(locs, fmtLoc(g.Loc))
	}
	if want := []string{"[query skip]", "[query limit]", "[query status]"}; !slices.Equal(locs, want) {
		t.Errorf("locs %q, want %q", locs, want)
	}
}
