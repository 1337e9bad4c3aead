package registry_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func open(t *testing.T) *registry.Registry {
	t.Helper()
	r, err := registry.Open(t.TempDir(), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestAddKeyCreatesUserThenAddsKeys(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k1, u1, err := s.AddKey(ctx, "Ada Lovelace", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	k2, u2, err := s.AddKey(ctx, "Ada King", "ADA@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k1, "mc_") || len(k1) != 43 || k1 == k2 {
		t.Fatalf("keys %q %q", k1, k2)
	}
	if u1.ID != u2.ID || len(u2.Keys) != 2 || u2.Name != "Ada King" {
		t.Fatalf("second key should go to the same user: %+v %+v", u1, u2)
	}
	for _, k := range []string{k1, k2} {
		if u := s.UserByKey(registry.HashKey(k)); u == nil || u.ID != u1.ID {
			t.Fatalf("key %s does not find the user", k[:8])
		}
	}
	file := gitOut(t, s.Dir(), "show", "main:"+gitstore.UserPath(u1.ID))
	if strings.Contains(file, k1) || strings.Contains(file, k2) || !strings.Contains(file, registry.HashKey(k1)) {
		t.Fatalf("the file must hold only key hashes:\n%s", file)
	}
	log := gitOut(t, s.Dir(), "log", "--format=%s|%an", "main")
	if want := "user ADA@example.com: add key|Mengi operator\nuser ada@example.com: create with a key|Mengi operator"; log != want {
		t.Fatalf("log:\n%s\nwant:\n%s", log, want)
	}
	gitOut(t, s.Dir(), "fsck", "--strict")
}

func TestAddKeyRefusesBadInput(t *testing.T) {
	s := open(t)
	for _, c := range []struct{ name, email, want string }{
		{"Ada", "not-an-email", "--email"},
		{"Ada", "Ada <ada@example.com>", "--email"},
		{" ", "ada@example.com", "--name"},
	} {
		if _, _, err := s.AddKey(context.Background(), c.name, c.email); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddKey(%q, %q) = %v, want an error naming %s", c.name, c.email, err, c.want)
		}
	}
	if out, _ := exec.Command("git", "-C", s.Dir(), "rev-list", "--all").Output(); len(out) != 0 {
		t.Fatalf("a refused key made commits: %s", out)
	}
}

func TestAddCluster(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	c, err := s.AddCluster(ctx, registry.ClusterSpec{Name: "prod", Provider: "hetzner", Region: "fsn1",
		Domain: "apps.example.com", Kubeconfig: "/etc/mengi/prod.kubeconfig", Users: []string{"ada@example.com"},
		AllowPrivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ClusterByName("prod"); got == nil || got.ID != c.ID || !got.Allows("ADA@example.com") ||
		got.Allows("bob@example.com") || !got.AllowPrivileged {
		t.Fatalf("ClusterByName = %+v", got)
	}
	if _, err := s.AddCluster(ctx, registry.ClusterSpec{Name: "prod"}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []registry.ClusterSpec{{Name: "Prod"}, {Name: "ok", Domain: "bad domain"}, {Name: "ok", Users: []string{"x"}}} {
		if _, err := s.AddCluster(ctx, bad); err == nil {
			t.Errorf("AddCluster(%+v) accepted", bad)
		}
	}
	if got := gitOut(t, s.Dir(), "log", "--format=%s%n%(trailers:key=Cluster-Id,valueonly)", "main"); got != "cluster prod: register\n"+c.ID {
		t.Fatalf("log: %q", got)
	}
	if got := gitOut(t, s.Dir(), "ls-tree", "-r", "--name-only", "main"); got != gitstore.ClusterPath(c.ID) {
		t.Fatalf("files: %q", got)
	}
}

func TestEnsureCluster(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	a, err := s.EnsureCluster(ctx, registry.ClusterSpec{Name: "local", Kubeconfig: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	same, err := s.EnsureCluster(ctx, registry.ClusterSpec{Name: "local", Kubeconfig: "/a"})
	if err != nil || same.ID != a.ID {
		t.Fatalf("unchanged: %+v %v", same, err)
	}
	moved, err := s.EnsureCluster(ctx, registry.ClusterSpec{Name: "local", Kubeconfig: "/b"})
	if err != nil || moved.ID != a.ID || moved.Kubeconfig != "/b" {
		t.Fatalf("updated: %+v %v", moved, err)
	}
	if got := gitOut(t, s.Dir(), "log", "--format=%s", "main"); got != "cluster local: update\ncluster local: register" {
		t.Fatalf("log:\n%s", got)
	}
}

// TestTakeOverFromDeploymentsRepository: a repository of an earlier
// version holds users and clusters among the deployments. Opening it moves
// them to the registry, one commit in each repository; the key works from
// the registry, every deployment stays, and opening again moves nothing.
func TestTakeOverFromDeploymentsRepository(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir() + "/repo"
	seed, err := bench.SeedRepo(ctx, repo, 20, 2)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := registry.OpenRepos(ctx, repo, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := repos.Registry
	if reg.Dir() != repo+"-registry" {
		t.Errorf("registry at %s, want %s-registry", reg.Dir(), repo)
	}
	if u := reg.UserByKey(registry.HashKey(seed.Key)); u == nil || u.ID != seed.UserID {
		t.Errorf("the seeded key does not find its user in the registry: %+v", u)
	}
	for _, id := range seed.ClusterIDs {
		if reg.Cluster(id) == nil {
			t.Errorf("cluster %s not in the registry", id)
		}
	}
	if n := len(repos.Deployments.DeploymentsOf(seed.UserID, 0, 1000, nil)); n != 20 {
		t.Errorf("%d deployments after the move, want 20", n)
	}
	if err := repos.Close(); err != nil {
		t.Fatal(err)
	}
	files := strings.Fields(gitOut(t, repo, "ls-tree", "-r", "--name-only", "main"))
	for _, f := range files {
		if !gitstore.IsDeploymentPath(f) {
			t.Errorf("%s is still in the deployments repository", f)
		}
	}
	if len(files) != 20 {
		t.Errorf("%d files in the deployments repository, want 20", len(files))
	}
	want := "Mengi operator|registry: move 1 user and 2 clusters to the operator registry"
	if got := gitOut(t, repo, "log", "-1", "--format=%an|%s", "main"); got != want {
		t.Errorf("deployments repository's last commit %q, want %q", got, want)
	}
	want = "Mengi operator|registry: take in 1 user and 2 clusters from the deployments repository"
	if got := gitOut(t, repo+"-registry", "log", "--format=%an|%s", "main"); got != want {
		t.Errorf("registry log %q, want %q", got, want)
	}

	again, err := registry.OpenRepos(ctx, repo, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if n := gitOut(t, repo, "rev-list", "--count", "main"); n != "2" {
		t.Errorf("%s commits in the deployments repository after opening again, want 2", n)
	}
	if n := gitOut(t, repo+"-registry", "rev-list", "--count", "main"); n != "1" {
		t.Errorf("%s commits in the registry after opening again, want 1", n)
	}
	gitOut(t, repo, "fsck", "--strict")
	gitOut(t, repo+"-registry", "fsck", "--strict")
}

// TestAdmit: a deployment is admitted when its cluster is registered, its
// owner is a user, and the cluster allows that user.
func TestAdmit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, ada, err := s.AddKey(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, bob, err := s.AddKey(ctx, "Bob", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.AddCluster(ctx, registry.ClusterSpec{Name: "open"})
	if err != nil {
		t.Fatal(err)
	}
	adas, err := s.AddCluster(ctx, registry.ClusterSpec{Name: "adas", Users: []string{"ADA@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	deployment := func(user, cluster string) *schema.Deployment {
		return &schema.Deployment{Metadata: schema.Metadata{UserID: user}, Spec: schema.Spec{ClusterID: cluster, Name: "web"}}
	}
	for _, c := range []struct {
		user, cluster string
		want          string // "" admitted; "unknown" ErrUnknownCluster; else the AccessError's text
	}{
		{ada.ID, open.ID, ""},
		{bob.ID, open.ID, ""},
		{ada.ID, adas.ID, ""},
		{bob.ID, adas.ID, "spec.cluster_id: user bob@example.com may not deploy to cluster adas"},
		{"01a21a25-0000-7000-8000-000000000000", open.ID, "metadata.user_id: user 01a21a25-0000-7000-8000-000000000000 is not registered"},
		{ada.ID, "6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d", "unknown"},
	} {
		cl, err := s.Admit(deployment(c.user, c.cluster))
		var denied *registry.AccessError
		switch {
		case c.want == "" && (err != nil || cl == nil || cl.ID != c.cluster):
			t.Errorf("Admit(%s on %s) = %v, %v; want admitted", c.user, c.cluster, cl, err)
		case c.want == "unknown" && !errors.Is(err, registry.ErrUnknownCluster):
			t.Errorf("Admit(%s on %s) = %v; want ErrUnknownCluster", c.user, c.cluster, err)
		case c.want != "" && c.want != "unknown" && (!errors.As(err, &denied) || !strings.HasPrefix(denied.Error(), c.want)):
			t.Errorf("Admit(%s on %s) = %v; want an AccessError %q", c.user, c.cluster, err, c.want)
		}
	}
}

// TestGrantGitAccess: an operator's grant is one commit, written as
// git_access: true in the user's file, kept by later keys; granting again
// commits nothing; an unknown email is an error.
func TestGrantGitAccess(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, u, err := s.AddKey(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.GitAccess || strings.Contains(gitOut(t, s.Dir(), "show", "main:"+gitstore.UserPath(u.ID)), "git_access") {
		t.Fatal("a new user has git access")
	}
	g, err := s.GrantGitAccess(ctx, "ADA@example.com")
	if err != nil || !g.GitAccess {
		t.Fatalf("grant: %v %+v", err, g)
	}
	if got := gitOut(t, s.Dir(), "log", "-1", "--format=%an|%s"); got != "Mengi operator|user ada@example.com: grant git access" {
		t.Errorf("commit %q", got)
	}
	if file := gitOut(t, s.Dir(), "show", "main:"+gitstore.UserPath(u.ID)); !strings.Contains(file, "\nemail: ada@example.com\ngit_access: true\ncreated_at: ") {
		t.Errorf("file:\n%s", file)
	}
	head := gitOut(t, s.Dir(), "rev-parse", "main")
	if _, err := s.GrantGitAccess(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if gitOut(t, s.Dir(), "rev-parse", "main") != head {
		t.Error("granting again made a commit")
	}
	k2, _, err := s.AddKey(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u := s.UserByKey(registry.HashKey(k2)); u == nil || !u.GitAccess {
		t.Errorf("a later key lost git access: %+v", u)
	}
	if _, err := s.GrantGitAccess(ctx, "nobody@example.com"); err == nil {
		t.Error("granted to an unknown email")
	}
}
