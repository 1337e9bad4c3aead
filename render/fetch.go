package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/schema"
)

// Size limits of downloads.
const (
	maxIndexBytes = 128 << 20 // a repository's index.yaml (large public repositories exceed 20 MiB)
	maxChartBytes = 64 << 20  // one chart archive
)

// chartKey identifies a chart version in a repository.
type chartKey struct {
	Repo    string `json:"repo"` // without a trailing slash
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (k chartKey) String() string { return k.Repo + " " + k.Name + " " + k.Version }

// fetchChart returns a fresh copy of the chart name at version from repoURL
// and its reference "name version sha256:<hex>". A chart version is taken
// to be immutable: once in the cache it is never fetched again.
func (r *Renderer) fetchChart(ctx context.Context, repoURL, name, version string) (*chart.Chart, string, error) {
	if schema.URLHasUserinfo(repoURL) {
		return nil, "", invalidSpec("helm_repo_url", "%s: %s", schema.RedactURL(repoURL), userinfoRefused)
	}
	key := chartKey{Repo: strings.TrimRight(repoURL, "/"), Name: name, Version: version}
	if ch, ref, ok := r.cached(key); ok {
		return ch, ref, nil
	}
	unlock, err := r.lockFetch(ctx, key.String())
	if err != nil {
		return nil, "", temporary("helm_repo_url", fmt.Errorf("waiting for another fetch of %s %s: %w", name, version, err))
	}
	defer unlock()
	if ch, ref, ok := r.cached(key); ok { // fetched while we waited
		return ch, ref, nil
	}

	ctx, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	begin := time.Now()
	var data []byte
	switch {
	case strings.HasPrefix(key.Repo, "oci://"):
		data, err = r.fetchOCI(ctx, key)
	case strings.HasPrefix(key.Repo, "https://"), strings.HasPrefix(key.Repo, "http://"):
		data, err = r.fetchHTTP(ctx, key)
	default:
		err = invalidSpec("helm_repo_url", "%q is not an http://, https:// or oci:// URL", repoURL)
	}
	if err != nil {
		e := asError("helm_repo_url", err)
		if ctx.Err() != nil { // cancelled, or FetchTimeout passed
			e.Temporary = true
		}
		return nil, "", e
	}
	digest := sha256Digest(data)
	ch, err := loadChart(data, key)
	if err != nil {
		return nil, "", err
	}
	r.log.Info("fetched chart", "repo", key.Repo, "chart", name, "version", version, "digest", digest,
		"bytes", len(data), "took", time.Since(begin).Round(time.Millisecond))
	if r.cache != nil {
		if err := r.cache.store(key, digest, data); err != nil {
			r.log.Warn("cannot cache chart", "chart", name, "version", version, "err", err)
		}
	}
	return ch, chartRef(name, version, digest), nil
}

// cached loads key's chart from the cache.
func (r *Renderer) cached(key chartKey) (*chart.Chart, string, bool) {
	if r.cache == nil {
		return nil, "", false
	}
	data, digest, ok := r.cache.lookup(key, r.log)
	if !ok {
		return nil, "", false
	}
	ch, err := loadChart(data, key)
	if err != nil {
		r.log.Warn("cached chart does not load; fetching it again", "chart", key.Name, "version", key.Version, "err", err)
		return nil, "", false
	}
	r.log.Debug("chart from cache", "chart", key.Name, "version", key.Version, "digest", digest)
	return ch, chartRef(key.Name, key.Version, digest), true
}

// lockFetch lets one fetch of a chart run at a time in this Renderer.
func (r *Renderer) lockFetch(ctx context.Context, key string) (unlock func(), err error) {
	for {
		r.mu.Lock()
		busy, ok := r.fetches[key]
		if !ok {
			done := make(chan struct{})
			r.fetches[key] = done
			r.mu.Unlock()
			return func() {
				r.mu.Lock()
				delete(r.fetches, key)
				r.mu.Unlock()
				close(done)
			}, nil
		}
		r.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func chartRef(name, version, digest string) string { return name + " " + version + " " + digest }

func sha256Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// loadChart reads a chart archive and checks that it is the chart asked
// for and that it can be installed.
func loadChart(data []byte, key chartKey) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, unavailable("helm_chart_version", fmt.Errorf("chart %s %s from %s is not a valid chart archive: %w", key.Name, key.Version, key.Repo, err))
	}
	md := ch.Metadata
	if md.Name != key.Name {
		return nil, unavailable("helm_chart_name", fmt.Errorf("%s serves chart %q where %q %s was asked for", key.Repo, md.Name, key.Name, key.Version))
	}
	if !sameVersion(md.Version, key.Version) {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s serves version %s of chart %q where %s was asked for", key.Repo, md.Version, key.Name, key.Version))
	}
	if md.Type == "library" {
		return nil, invalidSpec("helm_chart_name", "chart %q is a library chart, which cannot be installed", key.Name)
	}
	if err := action.CheckDependencies(ch, md.Dependencies); err != nil {
		return nil, unavailable("helm_chart_version", fmt.Errorf("chart %s %s: %w", key.Name, key.Version, err))
	}
	return ch, nil
}

// sameVersion compares chart versions as Helm does: as semantic versions
// ("v1.2.3" is "1.2.3"), or as strings when one is not semantic.
func sameVersion(a, b string) bool {
	if a == b {
		return true
	}
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	return errA == nil && errB == nil && va.Equal(vb) && va.Metadata() == vb.Metadata()
}

// Messages about credentials.
const (
	needsCredentials = "the repository needs credentials: the operator configures them with mengi agent --fetch-credentials"
	userinfoRefused  = "a user name or password in the URL is not allowed; the operator configures credentials (mengi agent --fetch-credentials)"
)

// unreachable reports a failed connection to url: the guard's one text for
// every cause (refused, closed port, timeout, DNS, TLS), naming url, so
// that a status never tells one from another; temporary, as a network
// problem may pass. Other errors keep their text.
func unreachable(field, url string, err error) *Error {
	var ge *fetchguard.Error
	if errors.As(err, &ge) {
		return temporary(field, ge.At(url))
	}
	var ue *neturl.Error // says "Get <url>: ..." again
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return temporary(field, fmt.Errorf("GET %s: %w", url, err))
}

// get reads url's body, at most limit bytes. Problems are blamed on field.
func (r *Renderer) get(ctx context.Context, url, field string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, invalidSpec(field, "bad URL %s: %w", url, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, unreachable(field, fetchguard.Redact(req.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, temporary(field, err)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = fmt.Errorf("%w (%s)", err, needsCredentials)
		}
		return nil, unavailable(field, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, unreachable(field, fetchguard.Redact(req.URL), err)
	}
	if int64(len(data)) > limit {
		return nil, unavailable(field, fmt.Errorf("GET %s: larger than %d MiB", req.URL.Redacted(), limit>>20))
	}
	return data, nil
}
