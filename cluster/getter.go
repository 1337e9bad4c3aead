package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RESTClientGetter returns Helm's view of the connection for one namespace:
// objects without a namespace in a chart go to namespace (Helm takes it from
// the getter, not from action.Install.Namespace: see the notes, "Helm SDK
// pitfall 3"). The getter shares the Conn's cached discovery client and
// RESTMapper.
func (c *Conn) RESTClientGetter(namespace string) genericclioptions.RESTClientGetter {
	return &restClientGetter{conn: c, namespace: namespace, config: c.config}
}

// restClientGetter implements genericclioptions.RESTClientGetter.
type restClientGetter struct {
	conn      *Conn
	namespace string
	config    *rest.Config // the Conn's, or one bound to a context (and impersonating)
}

// ToRESTConfig implements genericclioptions.RESTClientGetter.
func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

// ToDiscoveryClient implements genericclioptions.RESTClientGetter.
func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.conn.discovery, nil
}

// ToRESTMapper implements genericclioptions.RESTClientGetter.
func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.conn.expander, nil }

// ToRawKubeConfigLoader implements genericclioptions.RESTClientGetter.
func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return &namespacedConfig{getter: g}
}

// namespacedConfig is the clientcmd.ClientConfig of a getter: the loaded
// kubeconfig, with the getter's namespace as the (overridden) namespace.
type namespacedConfig struct {
	getter *restClientGetter
}

// RawConfig implements clientcmd.ClientConfig.
func (n *namespacedConfig) RawConfig() (clientcmdapi.Config, error) {
	return *n.getter.conn.raw.DeepCopy(), nil
}

// ClientConfig implements clientcmd.ClientConfig.
func (n *namespacedConfig) ClientConfig() (*rest.Config, error) { return n.getter.ToRESTConfig() }

// Namespace implements clientcmd.ClientConfig.
func (n *namespacedConfig) Namespace() (string, bool, error) {
	if n.getter.namespace == "" {
		return "default", false, nil
	}
	return n.getter.namespace, true, nil
}

// ConfigAccess implements clientcmd.ClientConfig.
func (n *namespacedConfig) ConfigAccess() clientcmd.ConfigAccess { return n.getter.conn.access }

// actionConfig returns a Helm configuration storing release records in
// namespace ("" for all namespaces, to list), with the Conn's own
// credentials, whose requests end when ctx does. Helm's own calls take no
// context; binding it to the transport makes Helm's actions return soon
// after ctx ends, so they can run synchronously, with no goroutine left
// behind. Actions that change a release use deployerConfig instead.
func (c *Conn) actionConfig(ctx context.Context, namespace string) (*action.Configuration, error) {
	return c.helmConfig(ctx, namespace, c.boundConfig(ctx))
}

// helmConfig returns a Helm configuration of namespace whose requests use
// rc.
func (c *Conn) helmConfig(ctx context.Context, namespace string, rc *rest.Config) (*action.Configuration, error) {
	getter := &restClientGetter{conn: c, namespace: namespace, config: rc}
	cfg := new(action.Configuration)
	log := c.log.With("namespace", namespace)
	err := cfg.Init(getter, namespace, c.opts.HelmDriver, func(format string, v ...any) {
		log.DebugContext(ctx, "helm: "+fmt.Sprintf(format, v...))
	})
	if err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	cfg.SetHookOutputFunc(func(_, _, _ string) io.Writer { return io.Discard })
	return cfg, nil
}

// boundConfig returns a copy of the client configuration whose requests are
// cancelled when ctx ends.
func (c *Conn) boundConfig(ctx context.Context) *rest.Config {
	cfg := rest.CopyConfig(c.config)
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return &contextTransport{ctx: ctx, next: rt}
	}
	return cfg
}

// contextTransport ends each request when either the request's own context
// or ctx ends.
type contextTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *contextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	resp, err := t.next.RoundTrip(req.WithContext(rctx))
	if err != nil {
		stop()
		cancel(nil)
		return nil, err
	}
	// The body is read after RoundTrip returns: release the context when
	// it is closed.
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel(nil) }}
	return resp, nil
}

// releasingBody calls release once, when closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

// Close implements io.Closer.
func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
