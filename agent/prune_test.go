package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
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
	store, reg := openRepos(t)
	a, b := addCluster(t, reg, "a"), addCluster(t, reg, "b")
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
	ag, err := New(Options{Store: store, Registry: reg, Renderer: noRenderer{}, Connect: func(c *schema.Cluster) (Conn, error) {
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

// TestRemovalHeld is the table of which removals wait for an operator.
func TestRemovalHeld(t *testing.T) {
	gone := func(n int) []cluster.Owned { return make([]cluster.Owned, n) }
	for _, c := range []struct {
		gone, of int
		share    float64
		want     bool
	}{
		{0, 10, 0.25, false},
		{1, 10, 0.25, false}, // one deployment deleted: at once
		{1, 2, 0.25, false},  // one of two
		{1, 1, 0.25, true},   // the cluster's only (and so every) deployment
		{2, 8, 0.25, false},  // exactly the share
		{3, 8, 0.25, true},
		{2, 2, 1, true}, // all of them, whatever the share
		{9, 10, 1, false},
		{40, 40, 0.25, true},
	} {
		if got := (removal{gone: gone(c.gone), of: c.of}).held(c.share); got != c.want {
			t.Errorf("%d of %d at share %v: held %v, want %v", c.gone, c.of, c.share, got, c.want)
		}
	}
}

// TestPruneHoldsMassRemoval: a commit deleting three of a cluster's four
// deployment files removes nothing; the cluster's status in the registry
// says what is held and at which commit, and pruning again changes
// nothing. Restoring two files ends the hold and removes the one still
// gone; deleting again and confirming removes exactly the held
// releases and clears the hold.
func TestPruneHoldsMassRemoval(t *testing.T) {
	ctx := context.Background()
	store, reg := openRepos(t)
	cl := addCluster(t, reg, "a")
	data, err := os.ReadFile("../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kube := &fakeKube{}
	files := map[string][]byte{}
	write := func(msg string, names ...string) {
		t.Helper()
		_, err := store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
			var changes []gitstore.Change
			for _, n := range names {
				changes = append(changes, gitstore.Change{Path: gitstore.DeploymentPath(cl.ID, n), Content: files[n]})
			}
			return &gitstore.Commit{Author: gitstore.Signature{Name: "T", Email: "t@example.com"}, Message: msg, Changes: changes}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"app-1", "app-2", "app-3", "app-4"}
	for i, name := range names {
		d, errs := schema.ParseFile(data)
		if errs != nil {
			t.Fatal(errs)
		}
		d.Metadata.ID, d.Spec.ClusterID, d.Spec.Name = fmt.Sprintf("01a21a25-4c3c-7695-80a2-%012d", i), cl.ID, name
		if files[name], err = schema.EncodeFile(d); err != nil {
			t.Fatal(err)
		}
		kube.releases = append(kube.releases, owned(name, map[string]string{LabelDeploymentID: d.Metadata.ID, LabelClusterID: cl.ID}))
	}
	write("add four\n", names...)
	ag, err := New(Options{Store: store, Registry: reg, Renderer: noRenderer{}, Connect: func(c *schema.Cluster) (Conn, error) {
		return &fakeConn{kube: kube, record: c.Name}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	hold := func() *schema.PruneHold {
		if c := reg.Cluster(cl.ID); c.Status != nil {
			return c.Status.PruneHold
		}
		return nil
	}
	saved := maps.Clone(files)
	remove := func(names ...string) {
		for _, n := range names {
			files[n] = nil
		}
		write("remove\n", names...)
	}

	remove("app-1", "app-2", "app-3")
	ag.prune(ctx)
	h := hold()
	if len(kube.uninstalled) != 0 || h == nil || h.Commit != store.Head().String() || h.Of != 4 || h.Confirmed ||
		!slices.Equal(h.Releases, []string{"mengi-app-1/app-1", "mengi-app-2/app-2", "mengi-app-3/app-3"}) {
		t.Fatalf("after removing three of four: uninstalled %v, hold %+v", kube.uninstalled, h)
	}
	regHead := reg.Store().Head()
	ag.prune(ctx)
	if reg.Store().Head() != regHead || len(kube.uninstalled) != 0 {
		t.Errorf("pruning again changed something: uninstalled %v", kube.uninstalled)
	}
	if _, err := reg.ConfirmPrune(ctx, "0000000"); !errors.Is(err, registry.ErrNoHold) {
		t.Errorf("confirming another commit: %v", err)
	}

	// Two files back: one of four removed goes at once, and the hold ends.
	files["app-1"], files["app-2"] = saved["app-1"], saved["app-2"]
	write("restore\n", "app-1", "app-2")
	ag.prune(ctx)
	if hold() != nil || !slices.Equal(kube.uninstalled, []string{"a: mengi-app-3/app-3"}) {
		t.Fatalf("after restoring two: uninstalled %v, hold %+v", kube.uninstalled, hold())
	}

	remove("app-1", "app-2", "app-4") // every deployment left
	ag.prune(ctx)
	if h = hold(); h == nil || len(h.Releases) != 3 || len(kube.uninstalled) != 1 {
		t.Fatalf("removing all three left: uninstalled %v, hold %+v", kube.uninstalled, h)
	}
	confirmed, err := reg.ConfirmPrune(ctx, h.Commit[:7])
	if err != nil || len(confirmed) != 1 || confirmed[0].ID != cl.ID {
		t.Fatalf("ConfirmPrune: %v, %v", confirmed, err)
	}
	ag.prune(ctx)
	want := []string{"a: mengi-app-3/app-3", "a: mengi-app-1/app-1", "a: mengi-app-2/app-2", "a: mengi-app-4/app-4"}
	if !slices.Equal(kube.uninstalled, want) || hold() != nil {
		t.Errorf("after the confirmation: uninstalled %v, hold %+v", kube.uninstalled, hold())
	}
	log := gitOut(t, reg.Dir(), "log", "--format=%an|%s")
	for _, line := range []string{
		"Mengi Agent|cluster a: removal of 3 of 4 deployments held (",
		"Mengi Agent|cluster a: removal no longer held",
		"Mengi operator|cluster a: confirm removal of 3 deployments (" + h.Commit[:8] + ")",
		"Mengi Agent|cluster a: removed 3 deployments (confirmed)",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("registry log lacks %q:\n%s", line, log)
		}
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// openRepos opens a deployments repository and its registry for a test.
func openRepos(t *testing.T) (*gitstore.Store, *registry.Registry) {
	t.Helper()
	repos, err := registry.OpenRepos(context.Background(), t.TempDir()+"/repo", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repos.Close() })
	return repos.Deployments, repos.Registry
}

// addCluster registers a cluster called name for a test.
func addCluster(t *testing.T, reg *registry.Registry, name string) *schema.Cluster {
	t.Helper()
	c, err := reg.AddCluster(context.Background(), registry.ClusterSpec{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
