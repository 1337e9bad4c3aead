package render

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// repoIndex is the part of a chart repository's index.yaml Mengi reads.
// It is decoded straight into these fields (gopkg.in/yaml.v3, which
// refuses excessive aliasing), not through a JSON document of the whole
// index: a 2 MB index once cost 16.7 s and 2.2 GB that way.
type repoIndex struct {
	Entries map[string][]indexEntry `yaml:"entries"`
}

type indexEntry struct {
	Version string   `yaml:"version"`
	Digest  string   `yaml:"digest"`
	URLs    []string `yaml:"urls"`
}

// fetchHTTP downloads a chart from an HTTP(S) chart repository: it reads
// <repo>/index.yaml, finds the chart's version, downloads its archive (a
// URL relative to the repository, or absolute) and checks the archive's
// SHA-256 against the index's digest when the index has one.
func (r *Renderer) fetchHTTP(ctx context.Context, key chartKey) ([]byte, error) {
	base, err := url.Parse(key.Repo + "/")
	if err != nil || base.Host == "" {
		return nil, invalidSpec("helm_repo_url", "%q is not a URL", key.Repo)
	}
	indexURL := base.JoinPath("index.yaml")
	body, err := r.get(ctx, indexURL.String(), "helm_repo_url", maxIndexBytes)
	if err != nil {
		return nil, err
	}
	var idx repoIndex
	if err := yaml.Unmarshal(body, &idx); err != nil {
		return nil, unavailable("helm_repo_url", fmt.Errorf("%s is not a chart repository index: %s", indexURL.Redacted(), strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	versions, ok := idx.Entries[key.Name]
	if !ok {
		return nil, unavailable("helm_chart_name", fmt.Errorf("chart %q is not in %s", key.Name, indexURL.Redacted()))
	}
	i := slices.IndexFunc(versions, func(e indexEntry) bool { return e.Version == key.Version })
	if i < 0 {
		i = slices.IndexFunc(versions, func(e indexEntry) bool { return sameVersion(e.Version, key.Version) })
	}
	if i < 0 {
		var have []string
		for _, e := range versions {
			have = append(have, e.Version)
		}
		return nil, unavailable("helm_chart_version", fmt.Errorf("version %s of chart %q is not in %s (newest: %s)",
			key.Version, key.Name, indexURL.Redacted(), newest(have, 5)))
	}
	entry := versions[i]
	if len(entry.URLs) == 0 {
		return nil, unavailable("helm_repo_url", fmt.Errorf("%s lists %s %s without a URL", indexURL.Redacted(), key.Name, key.Version))
	}
	ref, err := url.Parse(entry.URLs[0])
	if err != nil {
		return nil, unavailable("helm_repo_url", fmt.Errorf("%s: bad URL %q for %s %s: %w", indexURL.Redacted(), entry.URLs[0], key.Name, key.Version, err))
	}
	chartURL := base.ResolveReference(ref)
	if chartURL.Scheme != "https" && chartURL.Scheme != "http" {
		return nil, unavailable("helm_repo_url", fmt.Errorf("%s: %s %s is at %s, which is not HTTP(S)", indexURL.Redacted(), key.Name, key.Version, chartURL.Redacted()))
	}
	data, err := r.get(ctx, chartURL.String(), "helm_repo_url", maxChartBytes)
	if err != nil {
		return nil, err
	}
	got := sha256Digest(data)
	if want := entry.Digest; want != "" {
		if !strings.Contains(want, ":") {
			want = "sha256:" + want
		}
		if !strings.EqualFold(got, want) {
			return nil, unavailable("helm_repo_url", fmt.Errorf("the archive of %s %s at %s has digest %s, but %s says %s: refused",
				key.Name, key.Version, chartURL.Redacted(), got, indexURL.Redacted(), want))
		}
	} else {
		r.log.Warn("chart repository index has no digest; the archive is not verified", "chart", key.Name, "version", key.Version, "url", chartURL.Redacted())
	}
	return data, nil
}

// newest lists up to n versions, newest first ("none" for none).
func newest(versions []string, n int) string {
	if len(versions) == 0 {
		return "none"
	}
	sorted := slices.Clone(versions)
	slices.SortStableFunc(sorted, func(a, b string) int {
		va, errA := semver.NewVersion(a)
		vb, errB := semver.NewVersion(b)
		switch {
		case errA == nil && errB == nil:
			return vb.Compare(va)
		case errA == nil:
			return -1
		case errB == nil:
			return 1
		}
		return strings.Compare(b, a)
	})
	if len(sorted) > n {
		sorted = append(sorted[:n], "...")
	}
	return strings.Join(sorted, ", ")
}
