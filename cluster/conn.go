package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/mengi-cloud/gitops/schema"
)

// LabelManaged marks what Mengi owns: Helm releases (on the release record),
// and the namespaces Apply created. Owned lists only labelled releases, and
// Apply and Uninstall refuse to change a release without it.
const LabelManaged = "mengi.cloud/managed"

// Defaults of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultPingTimeout  = 5 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxHistory   = 10
	DefaultHelmDriver   = "secret"
)

// Options tune a Conn. The zero value is usable.
type Options struct {
	// Logger receives debug lines from Helm and the client; nil discards.
	Logger *slog.Logger
	// Timeout limits each request to the API server (DefaultTimeout).
	// Whole operations are limited by their context and timeout arguments.
	Timeout time.Duration
	// PingTimeout limits Ping (DefaultPingTimeout).
	PingTimeout time.Duration
	// HelmDriver is where Helm keeps release records: "secret" (the
	// default, Helm's own default) or "configmap". Records live in the
	// release's namespace.
	HelmDriver string
	// MaxHistory is the number of revisions kept per release
	// (DefaultMaxHistory); negative keeps all.
	MaxHistory int
	// PollInterval is how often Wait and Uninstall look at the objects
	// (DefaultPollInterval).
	PollInterval time.Duration
	// QPS and Burst limit the client's request rate (50 and 100: Helm
	// sends a burst of requests per release).
	QPS   float32
	Burst int
	// UserAgent is sent with every request ("mengi-agent").
	UserAgent string
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	switch o.HelmDriver {
	case "":
		o.HelmDriver = DefaultHelmDriver
	case "secret", "secrets", "configmap", "configmaps":
	default:
		// "memory" would forget releases between calls, "sql" needs a
		// global connection string.
		return o, fmt.Errorf("helm driver %q: use \"secret\" or \"configmap\"", o.HelmDriver)
	}
	switch {
	case o.MaxHistory == 0:
		o.MaxHistory = DefaultMaxHistory
	case o.MaxHistory < 0:
		o.MaxHistory = 0 // Helm: 0 is unlimited
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.QPS <= 0 {
		o.QPS = 50
	}
	if o.Burst <= 0 {
		o.Burst = 100
	}
	if o.UserAgent == "" {
		o.UserAgent = "mengi-agent"
	}
	return o, nil
}

// Conn is a connection to one cluster. It caches the client configuration,
// a clientset, a dynamic client and a memory-cached discovery client with
// its RESTMapper, all safe for concurrent use; a Conn is meant to live as
// long as the agent watches the cluster. It holds no goroutines and needs
// no Close.
type Conn struct {
	name string // for messages: the cluster's name, else its ID
	host string // the API server URL
	opts Options
	log  *slog.Logger

	raw    clientcmdapi.Config // the kubeconfig, for RESTClientGetter
	access clientcmd.ConfigAccess
	config *rest.Config

	clientset kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	expander  meta.RESTMapper // mapper with kubectl's short names

	podSecurity policy.Evaluator // Pod Security Admission's checks
	// unconfined turns Apply's policy check off, so tests can show that
	// the API server alone refuses the same objects (export_test.go).
	unconfined bool

	releases   keyedLocks // "namespace/name"
	namespaces keyedLocks
}

// Connect loads the cluster's kubeconfig and builds the clients. It does not
// contact the cluster (use Ping).
//
// c.Kubeconfig is a file on the agent's machine ("~/" is expanded); only
// that file is read, and c.Context selects its context (empty: the file's
// current-context). An empty c.Kubeconfig follows client-go's (and
// kubectl's) default rules: the files in $KUBECONFIG, else ~/.kube/config,
// else the in-cluster service account when the agent runs in a pod.
func Connect(c *schema.Cluster, opts Options) (*Conn, error) {
	if c == nil {
		return nil, fmt.Errorf("connect: no cluster")
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	path, err := expandHome(c.Kubeconfig)
	if err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	if c.Context != "" {
		raw.CurrentContext = c.Context // as used, for RESTClientGetter
	}
	if name == "" {
		name = cfg.Host
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = opts.Timeout
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	cfg.UserAgent = opts.UserAgent
	cfg.WarningHandlerWithContext = warningLogger{log: opts.Logger, cluster: name}

	conn := &Conn{
		name: name, host: cfg.Host, opts: opts,
		log:    opts.Logger.With("cluster", name),
		raw:    raw,
		access: loader.ConfigAccess(),
		config: cfg,
	}
	if conn.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	if conn.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	if conn.podSecurity, err = newPodSecurity(); err != nil {
		return nil, &ConfigError{Cluster: name, Kubeconfig: c.Kubeconfig, Context: c.Context, Err: err}
	}
	conn.discovery = memory.NewMemCacheClient(dc)
	conn.mapper = restmapper.NewDeferredDiscoveryRESTMapper(conn.discovery)
	conn.expander = restmapper.NewShortcutExpander(conn.mapper, conn.discovery, func(msg string) {
		conn.log.Debug("restmapper: " + msg)
	})
	return conn, nil
}

// expandHome expands a leading "~/" of a kubeconfig path.
func expandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", path, err)
	}
	return filepath.Join(home, strings.TrimPrefix(path, "~")), nil
}

// Name returns the cluster's name as used in messages.
func (c *Conn) Name() string { return c.name }

// Host returns the API server URL.
func (c *Conn) Host() string { return c.host }

// RESTConfig returns a copy of the client configuration.
func (c *Conn) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Clientset returns the cached typed client.
func (c *Conn) Clientset() kubernetes.Interface { return c.clientset }

// Dynamic returns the cached dynamic client.
func (c *Conn) Dynamic() dynamic.Interface { return c.dynamic }

// RESTMapper returns the cached, discovery-backed RESTMapper.
func (c *Conn) RESTMapper() meta.RESTMapper { return c.expander }

// Ping asks the API server whether it is ready (GET /readyz), within
// Options.PingTimeout. Any failure, a refused connection as well as a
// not-ready answer, is an *UnreachableError naming the cluster and its URL.
func (c *Conn) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.PingTimeout)
	defer cancel()
	_, err := c.clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Timeout(c.opts.PingTimeout).DoRaw(ctx)
	if err != nil {
		return &UnreachableError{Cluster: c.name, Host: c.host, Err: err}
	}
	return nil
}

// warningLogger sends the API server's warnings (deprecated APIs, unknown
// fields) to the log instead of stderr.
type warningLogger struct {
	log     *slog.Logger
	cluster string
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w warningLogger) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.log.WarnContext(ctx, "kubernetes warning", "cluster", w.cluster, "warning", text)
}
