package render_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/mengi-cloud/gitops/render"
)

// TestBuiltinChartLint runs Helm's lint (strict: warnings fail too) on the
// built-in chart with the values of every golden Docker rendering.
func TestBuiltinChartLint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mengi-app")
	if err := render.WriteBuiltinChart(dir); err != nil {
		t.Fatal(err)
	}
	kv, err := chartutil.ParseKubeVersion(goldenKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range goldenCases {
		if tc.helm {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(goldenPath(tc.name + ".values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			vals, err := chartutil.ReadValues(data)
			if err != nil {
				t.Fatal(err)
			}
			lint := action.NewLint()
			lint.Strict, lint.KubeVersion, lint.Namespace = true, kv, "mengi-lint"
			res := lint.Run([]string{dir}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Errorf("helm lint: %d charts linted, errors: %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

// TestBuiltinChartMetadata keeps the Go constants equal to Chart.yaml.
func TestBuiltinChartMetadata(t *testing.T) {
	ch, err := render.BuiltinChart()
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != render.BuiltinChartName || ch.Metadata.Version != render.BuiltinChartVersion {
		t.Errorf("chart/Chart.yaml is %s %s; the constants say %s %s", ch.Name(), ch.Metadata.Version, render.BuiltinChartName, render.BuiltinChartVersion)
	}
	if ch.Schema == nil {
		t.Error("the built-in chart has no values.schema.json")
	}
	var templates []string
	for _, f := range ch.Templates {
		templates = append(templates, f.Name)
	}
	if !slices.Contains(templates, "templates/_helpers.tpl") {
		t.Errorf("templates/_helpers.tpl is not embedded: %v", templates)
	}
}

// TestBuiltinChartVersionBumped fails when the chart's files change but
// its version does not: the version is in every release's ChartRef and
// Helm history, so two different charts must not share one. It compares
// with testdata/golden/chart.sum ("<version> <sha256 of the files>"), which
// -update rewrites once the version was bumped.
func TestBuiltinChartVersionBumped(t *testing.T) {
	h := sha256.New()
	err := filepath.WalkDir("chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(filepath.ToSlash(p) + "\x00"))
		h.Write(data)
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := render.BuiltinChartVersion + " " + hex.EncodeToString(h.Sum(nil))
	p := goldenPath("chart.sum")
	raw, err := os.ReadFile(p)
	want := strings.TrimSpace(string(raw))
	if err == nil && want == got {
		return
	}
	wantVersion, _, _ := strings.Cut(want, " ")
	if err == nil && wantVersion == render.BuiltinChartVersion {
		t.Fatalf("the built-in chart changed but its version is still %s: bump version in render/chart/Chart.yaml and BuiltinChartVersion, then run go test ./render -update", wantVersion)
	}
	if !*update {
		t.Fatalf("%s is %q; the chart is %q: run go test ./render -update", p, want, got)
	}
	if err := os.WriteFile(p, []byte(got+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
