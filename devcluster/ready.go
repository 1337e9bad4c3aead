package devcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Step limits for a loaded 2-core machine; a quiet one needs a fraction.
const (
	etcdTimeout      = 30 * time.Second
	apiserverTimeout = 90 * time.Second
	componentTimeout = 60 * time.Second
	nodesTimeout     = 60 * time.Second
	saTimeout        = 60 * time.Second
	pollInterval     = 100 * time.Millisecond
)

// waitFor polls check until it returns true, ctx ends, timeout passes or one
// of watched exits. Errors name the step, the limit, the last check error and
// the log of the process concerned.
func waitFor(ctx context.Context, step string, timeout time.Duration, watched []*process,
	check func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		for _, p := range watched {
			if err := p.exitErr(); err != nil {
				return p.failure(fmt.Errorf("while waiting for %s: %w", step, err))
			}
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// Stopped from outside (a signal, the caller): no log needed.
				return fmt.Errorf("waiting for %s: %w", step, context.Cause(ctx))
			}
			reason := fmt.Errorf("%s not ready after %s (last error: %v)", step, timeout, last)
			if len(watched) > 0 {
				return watched[len(watched)-1].failure(reason)
			}
			return reason
		case <-t.C:
		}
	}
}

// httpCheck returns a check that GETs url and wants status 200 with a body
// containing want.
func httpCheck(client *http.Client, url, want string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			return false, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
		}
		return true, nil
	}
}

// httpClient trusts caPEM, or, when it is nil, any certificate: the
// controller manager and the scheduler serve /healthz with self-signed
// certificates made at start.
func httpClient(caPEM []byte) *http.Client {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM == nil {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // loopback health checks of self-signed servers
	} else {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tlsCfg.RootCAs = pool
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, DisableKeepAlives: true},
	}
}

// CheckReady asks the API server named by kubeconfig for /readyz, with that
// kubeconfig's credentials. It works for any cluster, not only this
// package's.
func CheckReady(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("devcluster: %s/readyz: %w", cfg.Host, err)
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("devcluster: %s/readyz: %.200s", cfg.Host, body)
	}
	return nil
}
