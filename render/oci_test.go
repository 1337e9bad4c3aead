package render_test

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v3/pkg/registry"

	"github.com/mengi-cloud/gitops/render"
)

// ociRegistry is an OCI registry on loopback (go-containerregistry's
// in-memory registry) that can serve a tampered blob.
type ociRegistry struct {
	*httptest.Server
	tamper atomic.Pointer[string] // a blob path whose content is altered
}

func newOCIRegistry(t *testing.T) *ociRegistry {
	t.Helper()
	reg := &ociRegistry{}
	inner := ggcrregistry.New(ggcrregistry.Logger(nopLogger()))
	reg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p := reg.tamper.Load(); p != nil && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, *p) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			body[len(body)-1] ^= 0xff // same size, other bytes
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(reg.Close)
	return reg
}

// Host is host:port, for oci:// URLs.
func (r *ociRegistry) Host() string { return strings.TrimPrefix(r.URL, "http://") }

// push pushes a packaged chart as <host>/charts/<name>:<version> with
// Helm's registry client, as `helm push` does.
func (r *ociRegistry) push(t *testing.T, data []byte, name, version string) {
	t.Helper()
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(data, r.Host()+"/charts/"+name+":"+version); err != nil {
		t.Fatalf("push %s %s: %v", name, version, err)
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestOCIRegistry renders Helm deployments whose chart is in an OCI
// registry on loopback.
func TestOCIRegistry(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // keep Helm's client off ~/.docker
	v1, v2 := miniVersions(t)
	plus := withVersion(t, "0.3.0+build.1")
	reg := newOCIRegistry(t)
	reg.push(t, v1, "mini", "0.1.0")
	reg.push(t, v2, "mini", "0.2.0")
	reg.push(t, plus, "mini", "0.3.0+build.1")
	repoURL := "oci://" + reg.Host() + "/charts"

	cases := []struct {
		name    string
		chart   string
		version string
		tamper  bool
		ref     string
		reason  string
		field   string
		msgs    []string
	}{
		{name: "pull and verify", ref: "mini 0.1.0 sha256:" + sha256Hex(v1)},
		{name: "second version", version: "0.2.0", ref: "mini 0.2.0 sha256:" + sha256Hex(v2)},
		{name: "build metadata", version: "0.3.0+build.1", ref: "mini 0.3.0+build.1 sha256:" + sha256Hex(plus)},
		{name: "wrong version", version: "9.9.9", reason: render.ReasonChartUnavailable, field: "helm_chart_version",
			msgs: []string{`version 9.9.9 of chart "mini" is not in ` + repoURL, "newest: 0.3.0+build.1, 0.2.0, 0.1.0"}},
		{name: "missing chart", chart: "maxi", reason: render.ReasonChartUnavailable, field: "helm_chart_name",
			msgs: []string{`chart "maxi" is not in ` + repoURL}},
		{name: "tampered layer", tamper: true, reason: render.ReasonChartUnavailable, field: "helm_repo_url",
			msgs: []string{"chart layer sha256:" + sha256Hex(v1), "does not match its digest: refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := helmDeployment(t, helmCase, repoURL)
			if tc.chart != "" {
				d.Spec.HelmChartName = &tc.chart
			}
			if tc.version != "" {
				d.Spec.HelmChartVersion = &tc.version
			}
			if tc.tamper {
				p := "/blobs/sha256:" + sha256Hex(v1)
				reg.tamper.Store(&p)
				defer reg.tamper.Store(nil)
			}
			rel, err := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), d, nil)
			if tc.reason != "" {
				wantError(t, err, tc.reason, tc.field, tc.msgs...)
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if rel.ChartRef != tc.ref {
				t.Errorf("ChartRef %q; want %q", rel.ChartRef, tc.ref)
			}
			if !strings.Contains(rel.ValuesYAML, "message: hello from custom values") {
				t.Errorf("values_yaml lacks the custom values:\n%s", rel.ValuesYAML)
			}
		})
	}

	t.Run("cache", func(t *testing.T) {
		cache := t.TempDir()
		d := helmDeployment(t, helmCase, repoURL)
		first, err := newRenderer(t, render.Options{CacheDir: cache, Fetch: allowLoopback}).Render(testContext(t), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg.Close()
		second, err := newRenderer(t, render.Options{CacheDir: cache, Fetch: allowLoopback}).Render(testContext(t), d, nil)
		if err != nil {
			t.Fatalf("Render from the cache with the registry stopped: %v", err)
		}
		if first.ChartRef != second.ChartRef || first.ValuesYAML != second.ValuesYAML {
			t.Errorf("the cached rendering differs: %s / %s", first.ChartRef, second.ChartRef)
		}
		_, err = newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), d, nil)
		if re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url"); !re.Temporary {
			t.Errorf("an unreachable registry is not Temporary: %v", err)
		}
	})
}

// withVersion packages testdata/charts/mini as another version.
func withVersion(t *testing.T, version string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mini")
	if err := os.CopyFS(dir, os.DirFS("testdata/charts/mini")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "Chart.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("version: 0.1.0"), []byte("version: "+version), 1)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return packageChart(t, dir)
}
