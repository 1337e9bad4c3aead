package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDockerLifecycle: POST a web_app, see it running on the cluster and
// in Git, scale it with PATCH, delete it.
func TestDockerLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, d := e.call(http.MethodPost, "/deployments", map[string]any{
		"cluster_id": e.cluster.ID, "name": "shop", "app_type": "web_app", "docker_image": "nginx:1.27",
		"replicas": 2, "container_port": 8080, "cpu_request": 0.25, "memory_request_mb": 128,
	})
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, d)
	}
	id := d["id"].(string)
	start := time.Now()
	d = e.waitFor(id, 60*time.Second, "running", status("running"))
	t.Logf("commit to running: %v", time.Since(start))
	if d["endpoint_url"] != "https://shop.apps.test" || !strings.Contains(d["values_yaml"].(string), "nginx:1.27") ||
		d["git_path"] != "clusters/"+e.cluster.ID+"/shop.yaml" {
		t.Fatalf("running deployment: %v", d)
	}
	dep, err := e.kube.AppsV1().Deployments(e.ns("shop")).Get(context.Background(), "shop", metav1.GetOptions{})
	if err != nil || dep.Status.AvailableReplicas != 2 {
		t.Fatalf("Deployment on the cluster: %v %+v", err, dep.Status)
	}
	file := e.git("show", "main:clusters/"+e.cluster.ID+"/shop.yaml")
	if !strings.Contains(file, "status:\n  phase: running") {
		t.Fatalf("status not committed:\n%s", file)
	}
	log := e.git("log", "--format=%an|%s", "main")
	if !strings.Contains(log, "Mengi Agent|deployment local/shop: status running") {
		t.Fatalf("no status commit by the agent:\n%s", log)
	}

	code, d = e.call(http.MethodPatch, "/deployments/"+id, map[string]any{"replicas": 3})
	if code != http.StatusOK || d["status"] != "pending" {
		t.Fatalf("PATCH: %d %v", code, d)
	}
	e.waitFor(id, 60*time.Second, "running with 3 replicas", func(d map[string]any) bool {
		return d["status"] == "running" && d["replicas"] == float64(3)
	})
	dep, err = e.kube.AppsV1().Deployments(e.ns("shop")).Get(context.Background(), "shop", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 3 || dep.Status.AvailableReplicas != 3 {
		t.Fatalf("after PATCH: %v %+v", err, dep.Status)
	}

	code, d = e.call(http.MethodDelete, "/deployments/"+id, nil)
	if code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %v", code, d)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ = e.call(http.MethodGet, "/deployments/"+id, nil)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file was not removed after DELETE")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := e.kube.CoreV1().Namespaces().Get(context.Background(), e.ns("shop"), metav1.GetOptions{}); err == nil {
		t.Fatal("the namespace is still there")
	}
	if out := e.git("ls-tree", "-r", "--name-only", "main", "clusters/"+e.cluster.ID+"/"); out != "" {
		t.Fatalf("files left: %s", out)
	}
}
