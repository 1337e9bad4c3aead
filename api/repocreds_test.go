package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCreateRefusesRepoCredentials: a helm_repo_url with a user name or
// password is a 422 that does not repeat the password, and nothing of it
// reaches the repository.
func TestCreateRefusesRepoCredentials(t *testing.T) {
	e := newEnv(t)
	const password = "Tr0ub4dor-and-3"
	for _, repo := range []string{
		"https://ci:" + password + "@charts.example.com/stable",
		"oci://robot:" + password + "@registry.example.com/charts",
		"ftp://ci:" + password + "@charts.example.com", // also the wrong scheme
	} {
		t.Run(repo[:strings.Index(repo, ":")], func(t *testing.T) {
			e.noCommit(t, func() {
				res := e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: map[string]any{
					"cluster_id": e.prod.ID, "name": "private-chart", "deployment_type": "helm",
					"helm_repo_url": repo, "helm_chart_name": "mini", "helm_chart_version": "0.1.0",
				}})
				got := res.validationErrors(t)
				if len(got) != 1 || fmtLoc(got[0].Loc) != fmtLoc(L("body", "helm_repo_url")) {
					t.Fatalf("422 entries %s; want one at helm_repo_url", res.body)
				}
				if strings.Contains(string(res.body), password) {
					t.Errorf("the 422 repeats the password: %s", res.body)
				}
				if in, _ := got[0].Input.(string); !strings.Contains(in, "://***@") {
					t.Errorf("input %v; want the URL with its userinfo redacted", got[0].Input)
				}
				if !strings.HasPrefix(repo, "ftp") && (got[0].Type != "value_error" || !strings.Contains(got[0].Msg, "must not contain a user name or password")) {
					t.Errorf("entry %+v; want the value_error on credentials", got[0])
				}
			})
		})
	}
	if log := e.git(t, "log", "--all", "-p", "--format=%B"); strings.Contains(log, password) {
		t.Errorf("the repository holds the password:\n%s", log)
	}
	if strings.Contains(e.errors.String(), password) {
		t.Errorf("the server's error log holds the password")
	}
	// A URL with an @ only in its path is fine.
	e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: map[string]any{
		"cluster_id": e.prod.ID, "name": "at-in-path", "deployment_type": "helm",
		"helm_repo_url": "https://charts.example.com/team@acme", "helm_chart_name": "mini", "helm_chart_version": "0.1.0",
	}}).expect(t, http.StatusCreated)
}
