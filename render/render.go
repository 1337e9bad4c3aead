package render

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/postrender"
	"sigs.k8s.io/yaml"

	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/schema"
)

// Release is one deployment rendered as a Helm release: everything the
// agent needs to install or upgrade it, and what it reports back.
type Release struct {
	// Name is the release name: the deployment's name.
	Name string
	// Namespace is the release's namespace, Namespace(Name). The agent
	// creates it (Install.CreateNamespace).
	Namespace string
	// Chart is the chart to apply: the built-in chart for Docker
	// deployments, the fetched chart for Helm deployments. It is a fresh
	// copy for this Release; Helm may modify it while applying.
	Chart *chart.Chart
	// ChartRef names the chart for logs and events: "mengi-app 1.1.0" for
	// the built-in chart, "<name> <version> sha256:<digest of the .tgz>" for
	// a fetched one.
	ChartRef string
	// Values are the values to apply: ValuesYAML read the way Helm reads a
	// values file.
	Values map[string]any
	// ValuesYAML is the values document, keys sorted: the deployment's
	// values_yaml. The same deployment always gives the same bytes.
	ValuesYAML string
	// EndpointURL is https://<name>.<cluster domain> when the release has
	// an Ingress, else "" (Helm deployments: always "").
	EndpointURL string
	// PostRenderer, when not nil, must be passed to Helm's Install and
	// Upgrade (their PostRenderer field): for user charts it adds the label
	// mengi.cloud/deployment-id to every object. Nil for the built-in
	// chart, whose templates label every object themselves.
	PostRenderer postrender.PostRenderer

	userChart bool // a Helm deployment's chart, not the built-in one
}

// NamespacePrefix starts the namespace of every deployment.
const NamespacePrefix = "mengi-"

// Namespace returns the namespace of the deployment called name:
// "mengi-<name>". One namespace per deployment, always prefixed, so a
// deployment can never land in kube-system, default or a namespace that
// another tool owns (a deployment called "cert-manager", say). Names have at
// most 53 characters, so the namespace has at most 59 of the 63 allowed.
func Namespace(name string) string { return NamespacePrefix + name }

// Defaults of Options.
const (
	// DefaultKubeVersion is the Kubernetes version Render checks charts
	// against (a chart's kubeVersion constraint, .Capabilities).
	DefaultKubeVersion = "v1.37.2"
	// DefaultClusterIssuer is the cert-manager ClusterIssuer of Ingresses.
	DefaultClusterIssuer = "letsencrypt"
	// DefaultFetchTimeout bounds the fetch of one chart.
	DefaultFetchTimeout = 2 * time.Minute
)

// Options configure a Renderer. The zero value works: no chart cache,
// fetches from public addresses only, no logs.
type Options struct {
	// CacheDir keeps fetched charts (see cache.go): <CacheDir>/charts/...
	// Empty: no cache, every render of a Helm deployment fetches its chart.
	CacheDir string
	// Fetch guards every chart fetch (index.yaml, .tgz, OCI registries):
	// which addresses may be reached (Fetch.Allow), through which proxy,
	// with which credentials (package fetchguard). The zero value reaches
	// public addresses only, anonymously. Fetch.Logger defaults to Logger.
	Fetch fetchguard.Options
	// Logger receives debug and info lines about fetches. Nil: discarded.
	Logger *slog.Logger
	// ClusterIssuer is the cert-manager ClusterIssuer named in every
	// Ingress's cert-manager.io/cluster-issuer annotation. Empty:
	// DefaultClusterIssuer.
	ClusterIssuer string
	// KubeVersion is the version Render's trial rendering assumes. Empty:
	// DefaultKubeVersion.
	KubeVersion string
	// FetchTimeout bounds one chart fetch (index, archive, registry calls).
	// Zero: DefaultFetchTimeout.
	FetchTimeout time.Duration
}

// Renderer turns deployments into releases. It is safe for concurrent use;
// concurrent renders of the same chart fetch it once.
type Renderer struct {
	opts   Options
	log    *slog.Logger
	client *http.Client // guarded by opts.Fetch
	kube   *chartutil.KubeVersion
	cache  *chartCache // nil without CacheDir

	mu      sync.Mutex
	fetches map[string]chan struct{} // one fetch per chart at a time
}

// New returns a Renderer. It fails when KubeVersion cannot be parsed,
// CacheDir cannot be created or Fetch has a bad allow-list entry or proxy.
func New(opts Options) (*Renderer, error) {
	r := &Renderer{opts: opts, log: opts.Logger, fetches: map[string]chan struct{}{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.opts.Fetch.Logger == nil {
		r.opts.Fetch.Logger = r.log
	}
	guard, err := fetchguard.New(r.opts.Fetch)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	r.client = guard.Client()
	if r.opts.ClusterIssuer == "" {
		r.opts.ClusterIssuer = DefaultClusterIssuer
	}
	if r.opts.KubeVersion == "" {
		r.opts.KubeVersion = DefaultKubeVersion
	}
	if r.opts.FetchTimeout <= 0 {
		r.opts.FetchTimeout = DefaultFetchTimeout
	}
	kv, err := chartutil.ParseKubeVersion(r.opts.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("render: kube version %q: %w", r.opts.KubeVersion, err)
	}
	r.kube = kv
	if opts.CacheDir != "" {
		if r.cache, err = openCache(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
	}
	return r, nil
}

// Render makes the release of deployment d on cluster c (nil: a cluster
// without a domain). It fetches the chart of a Helm deployment (or takes it
// from the cache), builds the values, and renders the chart once, client
// side, so that a chart or values problem is reported here, before anything
// is applied. Every error is an *Error.
func (r *Renderer) Render(ctx context.Context, d *schema.Deployment, c *schema.Cluster) (*Release, error) {
	if d == nil {
		return nil, invalidSpec("", "no deployment")
	}
	if d.Spec.Name == "" {
		return nil, invalidSpec("name", "the deployment has no name")
	}
	if d.Metadata.ID == "" {
		return nil, invalidSpec("id", "the deployment has no id")
	}
	var (
		rel *Release
		err error
	)
	switch d.Spec.DeploymentType {
	case schema.TypeDocker, "":
		domain := ""
		if c != nil {
			domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Domain)), ".")
		}
		rel, err = r.renderDocker(d, domain)
	case schema.TypeHelm:
		rel, err = r.renderHelm(ctx, d)
	default:
		err = invalidSpec("deployment_type", "unknown deployment_type %q", d.Spec.DeploymentType)
	}
	if err != nil {
		return nil, err
	}
	if _, err := manifests(ctx, rel, r.kube); err != nil {
		return nil, err
	}
	return rel, nil
}

func (r *Renderer) renderDocker(d *schema.Deployment, domain string) (*Release, error) {
	v, err := dockerValues(d, domain, r.opts.ClusterIssuer)
	if err != nil {
		return nil, err
	}
	ch, err := BuiltinChart()
	if err != nil {
		return nil, renderFailed("", err)
	}
	rel, err := newRelease(d.Spec.Name, ch, BuiltinChartName+" "+BuiltinChartVersion, v)
	if err != nil {
		return nil, err
	}
	if v.Ingress != nil {
		rel.EndpointURL = "https://" + v.Ingress.Host
	}
	return rel, nil
}

// newRelease writes values as the values document (keys sorted) and reads
// it back as Helm reads a values file, so that Values is exactly what
// ValuesYAML says.
func newRelease(name string, ch *chart.Chart, ref string, values any) (*Release, error) {
	doc, err := yaml.Marshal(values)
	if err != nil {
		return nil, renderFailed("", fmt.Errorf("write values: %w", err))
	}
	vals, err := chartutil.ReadValues(doc)
	if err != nil {
		return nil, renderFailed("", fmt.Errorf("read values back: %w", err))
	}
	return &Release{
		Name:       name,
		Namespace:  Namespace(name),
		Chart:      ch,
		ChartRef:   ref,
		Values:     vals,
		ValuesYAML: string(doc),
	}, nil
}
