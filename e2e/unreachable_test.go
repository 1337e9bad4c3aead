package e2e

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/registry"
)

// closedPortKubeconfig writes a copy of the cluster's kubeconfig whose API
// server is a loopback port nobody listens on.
func closedPortKubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(clustertest.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(t.TempDir(), "unreachable.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnreachableCluster: a deployment on a cluster that cannot be reached
// waits (pending) and the responses say why (cluster_status, cluster_error);
// the other cluster's deployments are unaffected. Once the cluster record
// is fixed the deployment runs, and releases of two cluster records on one
// real cluster never prune each other.
func TestUnreachableCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	spec := registry.ClusterSpec{Name: "faraway", Kubeconfig: closedPortKubeconfig(t), Domain: "far.test", Provider: "local"}
	far, err := e.reg.AddCluster(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	farID := e.create("far-app", map[string]any{"cluster_id": far.ID})
	nearID := e.create("near-app", nil)
	e.waitFor(nearID, 60*time.Second, "running on the reachable cluster", status("running"))
	d := e.waitFor(farID, 30*time.Second, "cluster_status unreachable", func(d map[string]any) bool {
		return d["cluster_status"] == "unreachable"
	})
	msg, _ := d["cluster_error"].(string)
	if d["status"] != "pending" || !strings.Contains(msg, "connection refused") {
		t.Errorf("deployment on the unreachable cluster: status %v, cluster_error %q", d["status"], msg)
	}
	if n := len(e.releaseSecrets("far-app")); n != 0 {
		t.Errorf("%d Helm records for a deployment whose cluster is unreachable", n)
	}
	code, list := e.call(http.MethodGet, "/deployments/"+nearID, nil)
	if code != http.StatusOK || list["cluster_status"] != "connected" || list["cluster_error"] != nil {
		t.Errorf("deployment on the reachable cluster: %v", list)
	}

	// Fix the record: the same real cluster as "local".
	spec.Kubeconfig = clustertest.Kubeconfig(t)
	if _, err := e.reg.EnsureCluster(ctx, spec); err != nil {
		t.Fatal(err)
	}
	d = e.waitFor(farID, 90*time.Second, "running once the cluster is fixed", func(d map[string]any) bool {
		return d["status"] == "running" && d["cluster_status"] == "connected"
	})
	if d["cluster_error"] != nil || d["endpoint_url"] != "https://far-app.far.test" {
		t.Errorf("after the fix: %v", d)
	}

	// Deleting a deployment prunes: the releases of both records, on the
	// same real cluster, stay.
	uids := map[string]types.UID{}
	for _, name := range []string{"far-app", "near-app"} {
		recs := e.releaseSecrets(name)
		if len(recs) != 1 {
			t.Fatalf("%s: %d Helm records", name, len(recs))
		}
		uids[name] = recs[0].UID
	}
	goneID := e.create("near-gone", nil)
	e.waitFor(goneID, 60*time.Second, "running", status("running"))
	if code, _ := e.call(http.MethodDelete, "/deployments/"+goneID, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d", code)
	}
	eventually(t, 60*time.Second, "near-gone removed", func() (bool, string) {
		code, _ := e.call(http.MethodGet, "/deployments/"+goneID, nil)
		return code == http.StatusNotFound, "still there"
	})
	e.waitSettled(60 * time.Second)
	for _, name := range []string{"far-app", "near-app"} {
		if n := e.logs.count("pruning release", "release="+e.ns(name)+"/"+name); n > 0 {
			t.Errorf("%s was pruned (%d times) though its file is there", name, n)
		}
		recs := e.releaseSecrets(name)
		if got := revisions(recs); got != "1:deployed" || recs[0].UID != uids[name] {
			t.Errorf("%s's Helm records after a prune: %q, not the same record as before", name, got)
		}
		if ok, note := e.deploymentReady(e.ns(name), name, 1); !ok {
			t.Errorf("%s on the cluster after a prune: %s", name, note)
		}
	}
}
