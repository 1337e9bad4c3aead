package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v3/pkg/registry"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/mengi-cloud/gitops/fetchguard"
)

// fetchOCI downloads a chart from an OCI registry: the manifest of
// oci://<host>/<path>/<name>:<version> (a "+" in the version is "_" in the
// tag, as Helm pushes it), then its chart layer. Both are verified against
// their digests (the manifest's, the layer's as the manifest lists it).
// This is what Helm's registry.Client.Pull does, through the same library
// (oras-go), but it honours ctx. The registry gets the operator's
// credentials for it (Options.Fetch.Credentials), else is used
// anonymously; plain HTTP only on loopback hosts.
func (r *Renderer) fetchOCI(ctx context.Context, key chartKey) ([]byte, error) {
	ref := strings.TrimPrefix(key.Repo, "oci://") + "/" + key.Name
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, invalidSpec("helm_repo_url", "%s/%s is not an OCI repository reference: %w", key.Repo, key.Name, err)
	}
	repo.PlainHTTP = isLoopback(repo.Reference.Host())
	repo.Client = &auth.Client{Client: r.client, Cache: auth.NewCache(), Credential: r.registryCredential(ref)}
	tag := strings.ReplaceAll(key.Version, "+", "_")
	where := key.Repo + "/" + key.Name + ":" + tag

	desc, err := repo.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, r.ociNotFound(ctx, repo, key, where)
	}
	if err != nil {
		return nil, ociErr("resolve "+where, where, err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s is a %s, not a Helm chart", where, desc.MediaType))
	}
	if desc.Size > 4<<20 {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s: manifest of %d bytes refused", where, desc.Size))
	}
	raw, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, fetchErr(where+" manifest", where, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s: manifest: %w", where, err))
	}
	if m.Config.MediaType != registry.ConfigMediaType {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s is not a Helm chart (config media type %q)", where, m.Config.MediaType))
	}
	var layer *ocispec.Descriptor
	for i, l := range m.Layers {
		if l.MediaType == registry.ChartLayerMediaType || l.MediaType == registry.LegacyChartLayerMediaType {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s has no chart layer (%s)", where, registry.ChartLayerMediaType))
	}
	if layer.Size > maxChartBytes {
		return nil, unavailable("helm_chart_version", fmt.Errorf("%s: chart layer larger than %d MiB", where, maxChartBytes>>20))
	}
	data, err := content.FetchAll(ctx, repo.Blobs(), *layer)
	if err != nil {
		return nil, fetchErr(where+" chart layer "+layer.Digest.String(), where, err)
	}
	r.log.Debug("pulled chart", "ref", where, "manifest", desc.Digest, "layer", layer.Digest)
	return data, nil
}

// ociNotFound tells a missing repository (helm_chart_name) from a missing
// tag (helm_chart_version), listing the tags there are.
func (r *Renderer) ociNotFound(ctx context.Context, repo *remote.Repository, key chartKey, where string) error {
	var tags []string
	err := repo.Tags(ctx, "", func(page []string) error {
		tags = append(tags, page...)
		if len(tags) > 1000 {
			return errStopTags
		}
		return nil
	})
	var resp *errcode.ErrorResponse
	switch {
	case err == nil, errors.Is(err, errStopTags):
	case errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound:
		return unavailable("helm_chart_name", fmt.Errorf("chart %q is not in %s (no repository %s)", key.Name, key.Repo, key.Name))
	case isUnreachable(err), isUnauthorized(err):
		return ociErr("list the tags of "+key.Repo+"/"+key.Name, where, err)
	default: // the registry does not list tags to us: the tag is missing at least
		return unavailable("helm_chart_version", fmt.Errorf("%s is not in the registry (its tags cannot be listed: %w)", where, err))
	}
	for i, t := range tags {
		tags[i] = strings.ReplaceAll(t, "_", "+")
	}
	return unavailable("helm_chart_version", fmt.Errorf("version %s of chart %q is not in %s (newest: %s)", key.Version, key.Name, key.Repo, newest(tags, 5)))
}

var errStopTags = errors.New("enough tags")

// fetchErr classifies a failed download of what from the chart where:
// content that does not match its digest is refused for good, anything
// else is as ociErr says.
func fetchErr(what, where string, err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return unavailable("helm_repo_url", fmt.Errorf("%s does not match its digest: refused: %w", what, err))
	}
	return ociErr("fetch "+what, where, err)
}

// ociErr classifies a failed registry call (doing what, for the chart
// where): a failed connection is the guard's one text naming where; 401
// and 403, or a registry that asks for credentials the operator has not
// configured, are ChartUnavailable; anything else may pass.
func ociErr(what, where string, err error) *Error {
	switch {
	case isUnreachable(err):
		return unreachable("helm_repo_url", where, err)
	case isUnauthorized(err):
		return unavailable("helm_repo_url", fmt.Errorf("%s: %w (%s)", what, err, needsCredentials))
	}
	return temporary("helm_repo_url", fmt.Errorf("%s: %w", what, err))
}

func isUnreachable(err error) bool {
	var ge *fetchguard.Error
	return errors.As(err, &ge)
}

func isUnauthorized(err error) bool {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return true
	}
	return errors.Is(err, auth.ErrBasicCredentialNotFound)
}

// registryCredential gives oras the operator's credential for the
// repository ref (host[:port]/path/name), for that registry's host alone.
func (r *Renderer) registryCredential(ref string) auth.CredentialFunc {
	cred, ok := r.opts.Fetch.Credentials.Registry(ref)
	if !ok {
		return nil
	}
	host, _, _ := strings.Cut(ref, "/")
	return auth.StaticCredential(host, auth.Credential{Username: cred.Username, Password: cred.Password, AccessToken: cred.Token})
}

// isLoopback reports whether host[:port] is this machine (localhost or a
// loopback address), where a registry may be plain HTTP.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
