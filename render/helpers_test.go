package render_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// allowLoopback admits the test servers of this package (on 127.0.0.1),
// which the fetch guard refuses by default.
var allowLoopback = fetchguard.Options{Allow: []string{"127.0.0.1/32"}}

// testContext is a context that ends with the test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newRenderer makes a Renderer logging into the test's log.
func newRenderer(t *testing.T, opts render.Options) *render.Renderer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := render.New(opts)
	if err != nil {
		t.Fatalf("render.New: %v", err)
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// readDeployment parses and validates a deployment file.
func readDeployment(t *testing.T, path string) *schema.Deployment {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, errs := schema.ParseFile(data)
	if len(errs) > 0 {
		t.Fatalf("%s is not a valid deployment:\n%v", path, errs)
	}
	return d
}

// wantError checks that err is a *render.Error with reason and field
// whose message contains each of msgs.
func wantError(t *testing.T, err error, reason, field string, msgs ...string) *render.Error {
	t.Helper()
	t.Logf("error: %v", err)
	var re *render.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T); want a *render.Error %s at %s", err, err, reason, field)
	}
	if re.Reason != reason || re.Field != field {
		t.Errorf("error %q: reason %s, field %q; want %s, %q", err, re.Reason, re.Field, reason, field)
	}
	if field != "" && !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("error %q does not start with the field %q", err, field)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
	return re
}

// packageChart packages the chart in dir as Helm would (a .tgz).
func packageChart(t *testing.T, dir string) []byte {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chartRepo is a chart repository on loopback: <URL>/charts/index.yaml and
// the archives it lists.
type chartRepo struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte // path below /charts/ → content
	requests atomic.Int64
}

// repoChart is one chart version a chartRepo serves.
type repoChart struct {
	name, version string
	data          []byte
	digest        string // "" for the archive's own; "-" for none
	url           string // "" for <name>-<version>.tgz, relative
}

func newChartRepo(t *testing.T, charts ...repoChart) *chartRepo {
	t.Helper()
	repo := &chartRepo{files: map[string][]byte{}}
	repo.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		repo.requests.Add(1)
		repo.mu.Lock()
		data, ok := repo.files[strings.TrimPrefix(req.URL.Path, "/charts/")]
		repo.mu.Unlock()
		if !ok || !strings.HasPrefix(req.URL.Path, "/charts/") {
			http.NotFound(w, req)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(repo.Close)
	var index bytes.Buffer
	index.WriteString("apiVersion: v1\nentries:\n")
	byName := map[string][]repoChart{}
	var names []string
	for _, c := range charts {
		if _, seen := byName[c.name]; !seen {
			names = append(names, c.name)
		}
		byName[c.name] = append(byName[c.name], c)
	}
	for _, name := range names {
		fmt.Fprintf(&index, "  %s:\n", name)
		for _, c := range byName[name] {
			file := fmt.Sprintf("%s-%s.tgz", c.name, c.version)
			u := c.url
			if u == "" {
				u = file
			}
			repo.files[file] = c.data
			fmt.Fprintf(&index, "    - name: %s\n      version: %s\n      urls: [%q]\n", c.name, c.version, u)
			switch c.digest {
			case "":
				sum := sha256.Sum256(c.data)
				fmt.Fprintf(&index, "      digest: %s\n", hex.EncodeToString(sum[:]))
			case "-":
			default:
				fmt.Fprintf(&index, "      digest: %s\n", c.digest)
			}
		}
	}
	index.WriteString("generated: \"2026-11-26T00:00:00Z\"\n")
	repo.files["index.yaml"] = index.Bytes()
	return repo
}

// RepoURL is the repository's URL, for helm_repo_url.
func (r *chartRepo) RepoURL() string { return r.URL + "/charts" }

// helmDeployment returns the deployment in file with its chart at repoURL.
func helmDeployment(t *testing.T, file, repoURL string) *schema.Deployment {
	t.Helper()
	d := readDeployment(t, file)
	d.Spec.HelmRepoURL = &repoURL
	return d
}

func ptr[T any](v T) *T { return &v }

// goldenPath is where a golden file lives.
func goldenPath(name string) string { return filepath.Join("testdata", "golden", name) }

// checkGolden compares got with the golden file name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := goldenPath(name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./render -run %s -update to write it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendering (go test ./render -update rewrites it; review the diff):\n%s", p, lineDiff(string(want), got))
	}
}

// lineDiff lists the first lines that differ between want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  golden: %q\n  got:    %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
