package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/schema"
)

func TestPing(t *testing.T) {
	t.Parallel()
	c := connect(t)
	if err := c.Ping(testContext(t, time.Minute)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if c.Name() != "test" || !strings.HasPrefix(c.Host(), "https://127.0.0.1:") {
		t.Errorf("Name, Host = %q, %q", c.Name(), c.Host())
	}
}

// writeKubeconfig writes a kubeconfig for server with two contexts, "main"
// (current) and "other".
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: not-a-real-token
contexts:
- name: main
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: u, namespace: elsewhere}
current-context: main
`, server)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	server := fmt.Sprintf("https://127.0.0.1:%d", closedPort(t))
	c, err := cluster.Connect(&schema.Cluster{Name: "prod", Kubeconfig: writeKubeconfig(t, server)},
		cluster.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	begin := time.Now()
	err = c.Ping(context.Background())
	took := time.Since(begin)
	t.Logf("Ping: %v (%s)", err, took)
	var ue *cluster.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Ping = %v (%T); want *UnreachableError", err, err)
	}
	want := fmt.Sprintf("cluster prod (%s) unreachable: ", server)
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Ping error %q; want it to start with %q and say connection refused", err, want)
	}
	if took > 2*time.Second {
		t.Errorf("Ping took %s; want fast", took)
	}

	// Release operations say so too, wrapped in a *ReleaseError.
	_, err = c.Apply(context.Background(), cluster.Release{Name: "x", Namespace: "x", Chart: loadChart(t)})
	if !errors.As(err, &ue) {
		t.Errorf("Apply = %v; want an *UnreachableError inside", err)
	}
	var re *cluster.ReleaseError
	if !errors.As(err, &re) || re.Op != "apply" {
		t.Errorf("Apply = %v; want a *ReleaseError", err)
	}
	if _, err := c.Owned(context.Background()); !errors.As(err, &ue) {
		t.Errorf("Owned = %v; want an *UnreachableError inside", err)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	kc := writeKubeconfig(t, "https://127.0.0.1:1")
	for _, tc := range []struct {
		name    string
		cluster schema.Cluster
		opts    cluster.Options
		want    string
	}{
		{"missing file", schema.Cluster{Name: "a", Kubeconfig: filepath.Join(t.TempDir(), "nope")}, cluster.Options{}, "no such file"},
		{"unknown context", schema.Cluster{Name: "b", Kubeconfig: kc, Context: "nope"}, cluster.Options{}, `context "nope"`},
		{"bad driver", schema.Cluster{Name: "c", Kubeconfig: kc}, cluster.Options{HelmDriver: "memory"}, `helm driver "memory"`},
	} {
		_, err := cluster.Connect(&tc.cluster, tc.opts)
		var ce *cluster.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Connect = %v; want a *ConfigError saying %q", tc.name, err, tc.want)
		}
	}
	// Another context of the same file is fine.
	if _, err := cluster.Connect(&schema.Cluster{Name: "d", Kubeconfig: kc, Context: "other"}, cluster.Options{}); err != nil {
		t.Errorf("Connect with context other: %v", err)
	}
}

// TestRESTClientGetter checks Helm pitfall 3: the getter of a namespace
// reports that namespace, whatever the kubeconfig's context says.
func TestRESTClientGetter(t *testing.T) {
	t.Parallel()
	c, err := cluster.Connect(&schema.Cluster{Name: "d", Kubeconfig: writeKubeconfig(t, "https://127.0.0.1:1"), Context: "other"},
		cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns, overridden, err := c.RESTClientGetter("shop").ToRawKubeConfigLoader().Namespace()
	if ns != "shop" || !overridden || err != nil {
		t.Errorf("Namespace() = %q, %v, %v; want shop, true, nil", ns, overridden, err)
	}
	raw, err := c.RESTClientGetter("shop").ToRawKubeConfigLoader().RawConfig()
	if err != nil || raw.CurrentContext != "other" {
		t.Errorf("RawConfig() current context %q, %v", raw.CurrentContext, err)
	}
}
