package render

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// chartFS holds the built-in chart (all: keeps templates/_helpers.tpl).
//
//go:embed all:chart
var chartFS embed.FS

// The built-in chart's name and version, as in chart/Chart.yaml; a test
// keeps them equal.
const (
	BuiltinChartName    = "mengi-app"
	BuiltinChartVersion = "1.1.0"
)

// BuiltinChart loads a fresh copy of the built-in chart of Docker
// deployments. Each call returns a new *chart.Chart, which the caller may
// hand to Helm (Helm modifies charts it installs).
func BuiltinChart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(chartFS, "chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("chart", filepath.FromSlash(p))
		files = append(files, &loader.BufferedFile{Name: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("built-in chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("built-in chart: %w", err)
	}
	return ch, nil
}

// WriteBuiltinChart writes the built-in chart's files into dir (which it
// creates), for `helm lint` or `helm template` by hand.
func WriteBuiltinChart(dir string) error {
	return fs.WalkDir(chartFS, "chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("chart", filepath.FromSlash(p))
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := chartFS.ReadFile(path.Clean(p))
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}
