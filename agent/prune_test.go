package agent

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// fakeKube is one Kubernetes cluster's Helm releases, shared by the
// connections of every cluster record that points at it.
type fakeKube struct {
	mu          sync.Mutex
	releases    []cluster.Owned
	uninstalled []string // "record-name: namespace/name"
}

type fakeConn struct {
	kube   *fakeKube
	record string
}

func (f *fakeConn) Ping(context.Context) error { return nil }
func (f *fakeConn) Apply(context.Context, cluster.Release) (*cluster.Applied, error) {
	panic("not used")
}
func (f *fakeConn) Wait(context.Context, *cluster.Applied, time.Duration) error { panic("not used") }
func (f *fakeConn) Drift(context.Context, string, string) ([]string, error)     { panic("not used") }
func (f *fakeConn) Owned(context.Context) ([]cluster.Owned, error) {
	f.kube.mu.Lock()
	defer f.kube.mu.Unlock()
	return slices.Clone(f.kube.releases), nil
}
func (f *fakeConn) Uninstall(_ context.Context, name, namespace string, _ time.Duration) error {
	f.kube.mu.Lock()
	defer f.kube.mu.Unlock()
	f.kube.uninstalled = append(f.kube.uninstalled, f.record+": "+namespace+"/"+name)
	f.kube.releases = slices.DeleteFunc(f.kube.releases, func(o cluster.Owned) bool { return o.Name == name && o.Namespace == namespace })
	return nil
}

func owned(name string, labels map[string]string) cluster.Owned {
	labels[LabelManaged] = "true"
	return cluster.Owned{Name: name, Namespace: render.Namespace(name), Labels: labels, Status: "deployed", Revision: 1}
}

// TestPruneOnlyItsOwnClusterRecord: two cluster records of one repository
// point at the same Kubernetes cluster, which also holds a release of
// another repository. Pruning removes only the release whose file is gone;
// a release applied for the other record, or by another repository, stays.
func TestPruneOnlyItsOwnClusterRecord(t *testing.T) {
	ctx := context.Background()
	store, err := gitstore.Open(t.TempDir()+"/repo", gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, err := registry.AddCluster(ctx, store, registry.ClusterSpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := registry.AddCluster(ctx, store, registry.ClusterSpec{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	// Deployment app-a on record a, app-b on record b.
	data, err := os.ReadFile("../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"app-a": "01a21a25-4c3c-7695-80a2-1adbfc944fd8", "app-b": "01a21a25-4c3c-7695-80a2-1adbfc944fd9"}
	for name, cl := range map[string]*schema.Cluster{"app-a": a, "app-b": b} {
		d, errs := schema.ParseFile(data)
		if errs != nil {
			t.Fatal(errs)
		}
		d.Metadata.ID, d.Spec.ClusterID, d.Spec.Name = ids[name], cl.ID, name
		content, err := schema.EncodeFile(d)
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
			return &gitstore.Commit{Author: gitstore.Signature{Name: "T", Email: "t@example.com"}, Message: "add " + name,
				Changes: []gitstore.Change{{Path: gitstore.DeploymentPath(cl.ID, name), Content: content, Value: d}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	kube := &fakeKube{releases: []cluster.Owned{
		owned("app-a", map[string]string{LabelDeploymentID: ids["app-a"], LabelClusterID: a.ID}),
		owned("app-b", map[string]string{LabelDeploymentID: ids["app-b"], LabelClusterID: b.ID}),
		owned("gone", map[string]string{LabelDeploymentID: "01a21a25-0000-7000-8000-000000000001", LabelClusterID: a.ID}),
		owned("elsewhere", map[string]string{LabelDeploymentID: "01a21a25-0000-7000-8000-000000000002", LabelClusterID: "6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d"}),
	}}
	ag, err := New(Options{Store: store, Renderer: noRenderer{}, Connect: func(c *schema.Cluster) (Conn, error) {
		return &fakeConn{kube: kube, record: c.Name}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ag.prune(ctx)
	if want := []string{"a: mengi-gone/gone"}; !slices.Equal(kube.uninstalled, want) {
		t.Errorf("uninstalled %v; want %v", kube.uninstalled, want)
	}
}

type noRenderer struct{}

func (noRenderer) Render(context.Context, *schema.Deployment, *schema.Cluster) (*render.Release, error) {
	panic("not used")
}
