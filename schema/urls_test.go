package schema

import (
	"strings"
	"testing"
)

const repoPassword = "hunter2-Secret"

func TestURLUserinfo(t *testing.T) {
	cases := []struct {
		in, redacted string
		has          bool
	}{
		{"https://user:" + repoPassword + "@charts.example.com/stable", "https://***@charts.example.com/stable", true},
		{"oci://robot@registry.example.com/charts", "oci://***@registry.example.com/charts", true},
		{"http://:" + repoPassword + "@charts.example.com", "http://***@charts.example.com", true},
		{"https://a@b:p%zz@charts.example.com/x", "https://***@charts.example.com/x", true}, // not parsable by net/url
		{"https://charts.example.com/stable", "https://charts.example.com/stable", false},
		{"https://charts.example.com/a@b", "https://charts.example.com/a@b", false},
		{"https://charts.example.com?u=a@b", "https://charts.example.com?u=a@b", false},
		{"https://charts.example.com#a@b", "https://charts.example.com#a@b", false},
		{"charts.example.com", "charts.example.com", false},
		{"mailto:a@b", "mailto:a@b", false},
	}
	for _, c := range cases {
		if got := URLHasUserinfo(c.in); got != c.has {
			t.Errorf("URLHasUserinfo(%q) = %v; want %v", c.in, got, c.has)
		}
		if got := RedactURL(c.in); got != c.redacted {
			t.Errorf("RedactURL(%q) = %q; want %q", c.in, got, c.redacted)
		}
	}
}

// TestUserinfoRefused: a helm_repo_url with a user name or password is a
// 422 (and a file problem), and no problem repeats the password, whatever
// else is wrong with the body.
func TestUserinfoRefused(t *testing.T) {
	withPass := "https://ci:" + repoPassword + "@charts.example.com/stable"
	want := func(l []any, input string) []E {
		return []E{{Type: "value_error", Loc: l, Msg: msgURLUserinfo, Input: input}}
	}
	cases := []struct {
		name string
		body string
		want []E
	}{
		{"user and password", helm("helm_repo_url", withPass), want(b("helm_repo_url"), "https://***@charts.example.com/stable")},
		{"user only, oci", helm("helm_repo_url", "oci://robot@registry.example.com/charts"), want(b("helm_repo_url"), "oci://***@registry.example.com/charts")},
		{"on a docker deployment", docker("helm_repo_url", withPass), want(b("helm_repo_url"), "https://***@charts.example.com/stable")},
		{"and a bad scheme", helm("helm_repo_url", "ftp://ci:"+repoPassword+"@charts.example.com"), nil},
		{"and too long", helm("helm_repo_url", withPass+"/"+strings.Repeat("a", 2048)), nil},
		{"and a missing field", body(map[string]any{"cluster_id": "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", "deployment_type": "helm",
			"helm_repo_url": withPass, "helm_chart_name": "x", "helm_chart_version": "1.0.0"}), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, errs := DecodeCreate([]byte(c.body))
			checkInvariants(t, spec != nil, errs, "body")
			if c.want != nil {
				checkErrs(t, errs, c.want)
			}
			if dump := dumpErrs(errs); strings.Contains(dump, repoPassword) {
				t.Errorf("the problems repeat the password:\n%s", dump)
			}
		})
	}
	// PATCH cannot set helm_repo_url at all, and does not repeat it either.
	_, errs := DecodeUpdate([]byte(`{"helm_repo_url": "` + withPass + `"}`))
	if len(errs) == 0 || strings.Contains(dumpErrs(errs), repoPassword) {
		t.Errorf("PATCH helm_repo_url: %s", dumpErrs(errs))
	}
}

func TestUserinfoRefusedInFiles(t *testing.T) {
	file := fileWith(t, "  docker_image: nginx:1.27\n", "  deployment_type: helm\n  helm_repo_url: https://ci:"+repoPassword+
		"@charts.example.com\n  helm_chart_name: mini\n  helm_chart_version: 0.1.0\n")
	d, errs := ParseFile([]byte(file))
	checkInvariants(t, d != nil, errs, "")
	checkFileErrs(t, errs, []FE{{E{Type: "value_error", Loc: L("spec", "helm_repo_url"), Msg: msgURLUserinfo, Input: "https://***@charts.example.com"}, 14}})
	if strings.Contains(errs.Error(), repoPassword) || strings.Contains(dumpErrs(errs), repoPassword) {
		t.Errorf("the problems repeat the password: %v", errs)
	}
}
