package registry_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
)

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func open(t *testing.T) *gitstore.Store {
	t.Helper()
	s, err := gitstore.Open(t.TempDir(), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAddKeyCreatesUserThenAddsKeys(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k1, u1, err := registry.AddKey(ctx, s, "Ada Lovelace", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	k2, u2, err := registry.AddKey(ctx, s, "Ada King", "ADA@example.com")
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
		r := s.UserByKey(registry.HashKey(k))
		if r == nil || r.User().ID != u1.ID {
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
		if _, _, err := registry.AddKey(context.Background(), s, c.name, c.email); err == nil || !strings.Contains(err.Error(), c.want) {
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
	c, err := registry.AddCluster(ctx, s, registry.ClusterSpec{Name: "prod", Provider: "hetzner", Region: "fsn1",
		Domain: "apps.example.com", Kubeconfig: "/etc/mengi/prod.kubeconfig", Users: []string{"ada@example.com"},
		AllowPrivileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := registry.ClusterByName(s, "prod"); got == nil || got.ID != c.ID || !got.Allows("ADA@example.com") ||
		got.Allows("bob@example.com") || !got.AllowPrivileged {
		t.Fatalf("ClusterByName = %+v", got)
	}
	if _, err := registry.AddCluster(ctx, s, registry.ClusterSpec{Name: "prod"}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []registry.ClusterSpec{{Name: "Prod"}, {Name: "ok", Domain: "bad domain"}, {Name: "ok", Users: []string{"x"}}} {
		if _, err := registry.AddCluster(ctx, s, bad); err == nil {
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
	a, err := registry.EnsureCluster(ctx, s, registry.ClusterSpec{Name: "local", Kubeconfig: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	same, err := registry.EnsureCluster(ctx, s, registry.ClusterSpec{Name: "local", Kubeconfig: "/a"})
	if err != nil || same.ID != a.ID {
		t.Fatalf("unchanged: %+v %v", same, err)
	}
	moved, err := registry.EnsureCluster(ctx, s, registry.ClusterSpec{Name: "local", Kubeconfig: "/b"})
	if err != nil || moved.ID != a.ID || moved.Kubeconfig != "/b" {
		t.Fatalf("updated: %+v %v", moved, err)
	}
	if got := gitOut(t, s.Dir(), "log", "--format=%s", "main"); got != "cluster local: update\ncluster local: register" {
		t.Fatalf("log:\n%s", got)
	}
}
