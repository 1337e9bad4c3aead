package render_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

const helmCase = "testdata/deployments/helm-chart-custom.yaml"

// miniVersions packages testdata/charts/mini as versions 0.1.0 and 0.2.0.
func miniVersions(t *testing.T) (v1, v2 []byte) {
	t.Helper()
	v1 = packageChart(t, "testdata/charts/mini")
	dir := filepath.Join(t.TempDir(), "mini")
	if err := os.CopyFS(dir, os.DirFS("testdata/charts/mini")); err != nil {
		t.Fatal(err)
	}
	chartYAML := filepath.Join(dir, "Chart.yaml")
	data, err := os.ReadFile(chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chartYAML, []byte(strings.Replace(string(data), "version: 0.1.0", "version: 0.2.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return v1, packageChart(t, dir)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestChartRepository renders Helm deployments against chart repositories
// served on loopback, good and broken.
func TestChartRepository(t *testing.T) {
	v1, v2 := miniVersions(t)
	good := newChartRepo(t,
		repoChart{name: "mini", version: "0.1.0", data: v1},
		repoChart{name: "mini", version: "0.2.0", data: v2},
	)
	absolute := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1, url: good.URL + "/charts/mini-0.1.0.tgz"})
	noDigest := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1, digest: "-"})
	prefixed := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1, digest: "sha256:" + sha256Hex(v1)})
	tampered := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1, digest: sha256Hex(v2)})
	notAChart := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: []byte("not a tgz")})
	otherName := newChartRepo(t, repoChart{name: "other", version: "0.1.0", data: v1})
	noIndex := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noIndex.Close)
	garbageIndex := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("entries: [1, 2")) }))
	t.Cleanup(garbageIndex.Close)
	// An index of 1 MB whose aliases expand to about 10 GB.
	var bomb strings.Builder
	bomb.WriteString("apiVersion: v1\nbig: &s " + strings.Repeat("x", 1_000_000) + "\nrefs: [")
	for i := range 10_000 {
		if i > 0 {
			bomb.WriteString(",")
		}
		bomb.WriteString("*s")
	}
	bomb.WriteString("]\nentries: {}\n")
	aliasIndex := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(bomb.String())) }))
	t.Cleanup(aliasIndex.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(failing.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	cases := []struct {
		name      string
		repo      string
		chart     string
		version   string
		values    *string
		ref       string // want ChartRef on success
		reason    string // want an error
		field     string
		temporary bool
		msgs      []string
	}{
		{name: "fetch and verify", repo: good.RepoURL(), ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},
		{name: "second version", repo: good.RepoURL(), version: "0.2.0", ref: "mini 0.2.0 sha256:" + sha256Hex(v2)},
		{name: "v prefix", repo: good.RepoURL(), version: "v0.2.0", ref: "mini v0.2.0 sha256:" + sha256Hex(v2)},
		{name: "trailing slash", repo: good.RepoURL() + "/", ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},
		{name: "absolute archive URL", repo: absolute.RepoURL(), ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},
		{name: "index without digest", repo: noDigest.RepoURL(), ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},
		{name: "digest with algorithm", repo: prefixed.RepoURL(), ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},

		{name: "missing chart", repo: good.RepoURL(), chart: "maxi", reason: render.ReasonChartUnavailable, field: "helm_chart_name",
			msgs: []string{`chart "maxi" is not in`, "/charts/index.yaml"}},
		{name: "wrong version", repo: good.RepoURL(), version: "9.9.9", reason: render.ReasonChartUnavailable, field: "helm_chart_version",
			msgs: []string{`version 9.9.9 of chart "mini" is not in`, "newest: 0.2.0, 0.1.0"}},
		{name: "tampered archive", repo: tampered.RepoURL(), reason: render.ReasonChartUnavailable, field: "helm_repo_url",
			msgs: []string{"has digest sha256:" + sha256Hex(v1), "says sha256:" + sha256Hex(v2), "refused"}},
		{name: "archive not a chart", repo: notAChart.RepoURL(), reason: render.ReasonChartUnavailable, field: "helm_chart_version",
			msgs: []string{"not a valid chart archive"}},
		{name: "archive of another chart", repo: otherName.RepoURL(), chart: "other", reason: render.ReasonChartUnavailable, field: "helm_chart_name",
			msgs: []string{`serves chart "mini" where "other" 0.1.0 was asked for`}},
		{name: "no index", repo: noIndex.URL, reason: render.ReasonChartUnavailable, field: "helm_repo_url",
			msgs: []string{"index.yaml: 404 Not Found"}},
		{name: "index not YAML", repo: garbageIndex.URL, reason: render.ReasonChartUnavailable, field: "helm_repo_url",
			msgs: []string{"is not a chart repository index"}},
		// Read in a moment: only the entries are decoded, aliases are
		// never expanded into a document of the whole index.
		{name: "index with expanding aliases", repo: aliasIndex.URL, reason: render.ReasonChartUnavailable, field: "helm_chart_name",
			msgs: []string{`chart "mini" is not in`}},
		{name: "values with aliases", repo: good.RepoURL(), values: ptr("a: &x {b: 1}\nc: *x\n"),
			reason: render.ReasonInvalidSpec, field: "custom_values_yaml", msgs: []string{"uses a YAML alias ('*x') at its line 2"}},
		{name: "server error", repo: failing.URL, reason: render.ReasonChartUnavailable, field: "helm_repo_url", temporary: true,
			msgs: []string{"503 Service Unavailable"}},
		{name: "unreachable", repo: closed.URL, reason: render.ReasonChartUnavailable, field: "helm_repo_url", temporary: true,
			msgs: []string{"cannot fetch " + closed.URL + "/index.yaml: the host could not be reached or is not allowed"}},

		{name: "values refused by the chart's schema", repo: good.RepoURL(), values: ptr("replicaCount: many\n"),
			reason: render.ReasonInvalidSpec, field: "custom_values_yaml", msgs: []string{"values.schema.json: mini: at '/replicaCount': got string, want integer"}},
		{name: "template failure", repo: good.RepoURL(), values: ptr("fail: true\n"),
			reason: render.ReasonRenderFailed, field: "custom_values_yaml", msgs: []string{"mini: fail is set"}},
		{name: "values not a mapping", repo: good.RepoURL(), values: ptr("- a\n- b\n"),
			reason: render.ReasonInvalidSpec, field: "custom_values_yaml", msgs: []string{"should be a YAML mapping of chart values, not a list"}},
		{name: "values not YAML", repo: good.RepoURL(), values: ptr("a: [1\n"),
			reason: render.ReasonInvalidSpec, field: "custom_values_yaml", msgs: []string{"not valid YAML"}},
		{name: "global not a mapping", repo: good.RepoURL(), values: ptr("global: 3\n"),
			reason: render.ReasonInvalidSpec, field: "custom_values_yaml", msgs: []string{"global should be a mapping, not 3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := helmDeployment(t, helmCase, tc.repo)
			if tc.chart != "" {
				d.Spec.HelmChartName = &tc.chart
			}
			if tc.version != "" {
				d.Spec.HelmChartVersion = &tc.version
			}
			if tc.values != nil {
				d.Spec.CustomValuesYAML = tc.values
			}
			r := newRenderer(t, render.Options{Fetch: allowLoopback})
			rel, err := r.Render(testContext(t), d, nil)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				if rel.ChartRef != tc.ref {
					t.Errorf("ChartRef %q; want %q", rel.ChartRef, tc.ref)
				}
				return
			}
			re := wantError(t, err, tc.reason, tc.field, tc.msgs...)
			if re.Temporary != tc.temporary {
				t.Errorf("Temporary %v; want %v (%v)", re.Temporary, tc.temporary, err)
			}
		})
	}
}

// TestChartCache renders from the cache once the repository is gone, and
// fetches a chart once for many concurrent renders.
func TestChartCache(t *testing.T) {
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	cache := t.TempDir()
	d := helmDeployment(t, helmCase, repo.RepoURL())

	r := newRenderer(t, render.Options{CacheDir: cache, Fetch: allowLoopback})
	var wg sync.WaitGroup
	refs := make([]string, 8)
	for i := range refs {
		wg.Go(func() {
			rel, err := r.Render(testContext(t), helmDeployment(t, helmCase, repo.RepoURL()), nil)
			if err != nil {
				t.Errorf("Render: %v", err)
				return
			}
			refs[i] = rel.ChartRef
		})
	}
	wg.Wait()
	if n := repo.requests.Load(); n != 2 {
		t.Errorf("%d requests for 8 concurrent renders; want 2 (index.yaml and the archive)", n)
	}
	archive := filepath.Join(cache, "charts", "sha256", sha256Hex(v1)+".tgz")
	if data, err := os.ReadFile(archive); err != nil || string(data) != string(v1) {
		t.Errorf("cached archive %s: %v", archive, err)
	}

	repo.Close()
	second := newRenderer(t, render.Options{CacheDir: cache, Fetch: allowLoopback})
	rel, err := second.Render(testContext(t), d, nil)
	if err != nil {
		t.Fatalf("Render from the cache with the repository stopped: %v", err)
	}
	if rel.ChartRef != refs[0] || rel.ChartRef != "mini 0.1.0 sha256:"+sha256Hex(v1) {
		t.Errorf("ChartRef %q from the cache; want %q", rel.ChartRef, refs[0])
	}

	// A damaged archive in the cache is not used.
	if err := os.WriteFile(archive, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = newRenderer(t, render.Options{CacheDir: cache, Fetch: allowLoopback}).Render(testContext(t), d, nil)
	wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url", "cannot fetch "+repo.RepoURL()+"/index.yaml: "+fetchguard.Unreachable)
	if _, statErr := os.Stat(archive); !os.IsNotExist(statErr) {
		t.Errorf("the damaged archive is still in the cache: %v", statErr)
	}

	// Without a cache, the stopped repository is needed.
	_, err = newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), d, nil)
	wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url")
}

// TestChartFetchHonoursContext gives up on a repository that never
// answers when the context ends, and after FetchTimeout.
func TestChartFetchHonoursContext(t *testing.T) {
	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hanging.Close() })
	d := helmDeployment(t, helmCase, hanging.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(ctx, d, nil)
	re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url")
	if !re.Temporary || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: Temporary %v, context.DeadlineExceeded %v; want both", err, re.Temporary, errors.Is(err, context.DeadlineExceeded))
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Render took %s after the context ended", took)
	}

	_, err = newRenderer(t, render.Options{FetchTimeout: 200 * time.Millisecond, Fetch: allowLoopback}).Render(testContext(t), d, nil)
	if re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url"); !re.Temporary {
		t.Errorf("a fetch timeout is not Temporary: %v", err)
	}
}

// TestHelmValues checks the values Mengi sets for a user's chart.
func TestHelmValues(t *testing.T) {
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	cases := []struct {
		name, custom, want string
	}{
		{name: "no custom values", custom: "", want: "global:\n  mengi:\n    deploymentId: ID\n"},
		{name: "Mengi's value wins", custom: "global:\n  mengi:\n    deploymentId: mine\n    other: kept\n",
			want: "global:\n  mengi:\n    deploymentId: ID\n    other: kept\n"},
		{name: "keys sorted, YAML 1.1 read as Helm does", custom: "z: 1\na: yes\nm: {b: 2.50, a: \"x\"}\n",
			want: "a: true\nglobal:\n  mengi:\n    deploymentId: ID\nm:\n  a: x\n  b: 2.5\nz: 1\n"},
	}
	r := newRenderer(t, render.Options{Fetch: allowLoopback})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := helmDeployment(t, "testdata/deployments/helm-chart-defaults.yaml", repo.RepoURL())
			d.Spec.CustomValuesYAML = &tc.custom
			rel, err := r.Render(testContext(t), d, &schema.Cluster{Domain: testDomain})
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, "ID", d.Metadata.ID)
			if rel.ValuesYAML != want {
				t.Errorf("values_yaml:\n%s\nwant:\n%s", rel.ValuesYAML, want)
			}
			if rel.EndpointURL != "" {
				t.Errorf("EndpointURL %q for a Helm deployment; want none", rel.EndpointURL)
			}
		})
	}
}
