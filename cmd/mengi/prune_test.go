package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// TestPruneCommand: `mengi prune` lists the removals the agent holds,
// and `mengi prune --confirm COMMIT` confirms one, as an operator's commit
// in the registry; a commit nothing is held at is an error.
func TestPruneCommand(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	if out := runMengi(t, "prune", "--repo", repo); out != "no removal is held\n" {
		t.Errorf("nothing held: %q", out)
	}
	reg, err := registry.Open(registry.DefaultDir(repo), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl, err := reg.AddCluster(ctx, registry.ClusterSpec{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.Repeat("ab12", 10)
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	err = reg.EditClusterStatus(ctx, cl.ID, gitstore.Signature{Name: "Mengi Agent", Email: "agent@mengi.local"}, func(st *schema.ClusterStatus) (string, string) {
		st.PruneHold = &schema.PruneHold{Commit: commit, Releases: []string{"mengi-a/a", "mengi-b/b"}, Of: 2, Since: since}
		return "removal held", ""
	})
	reg.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := "cluster prod: 2 of 2 deployments removed at ab12ab12 (held: mengi prune --confirm ab12ab12), since 2026-12-01T10:00:00Z\n  mengi-a/a\n  mengi-b/b\n"
	if out := runMengi(t, "prune", "--repo", repo); out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	if err := mengiCmd("prune", "--repo", repo, "--confirm", "0000000").Run(); err == nil {
		t.Error("confirming a commit nothing is held at succeeded")
	}
	if out := runMengi(t, "prune", "--repo", repo, "--confirm", "ab12ab1"); out != "cluster prod: removal of 2 deployments confirmed; the agent removes them now\n" {
		t.Errorf("confirm: %q", out)
	}
	if out := runMengi(t, "prune", "--repo", repo); !strings.Contains(out, "(confirmed, being removed)") {
		t.Errorf("after confirming:\n%s", out)
	}
	log := strings.TrimSpace(runGit(t, registry.DefaultDir(repo), "log", "-1", "--format=%an|%s"))
	if log != "Mengi operator|cluster prod: confirm removal of 2 deployments (ab12ab12)" {
		t.Errorf("registry commit %q", log)
	}
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestClustersUsersCommand: `mengi clusters users` sets who may deploy to
// a cluster, keeping the rest of its record, in an operator's commit.
func TestClustersUsersCommand(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	id := strings.TrimSpace(runMengi(t, "clusters", "add", "--repo", repo, "--name", "prod", "--kubeconfig", "/k", "--domain", "apps.example.com"))
	runMengi(t, "clusters", "users", "--repo", repo, "--name", "prod", "--user", "ada@example.com", "--user", "bob@example.com")
	if err := mengiCmd("clusters", "users", "--repo", repo, "--name", "nope").Run(); err == nil {
		t.Error("an unknown cluster's users were set")
	}
	reg, err := registry.Open(registry.DefaultDir(repo), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := reg.Cluster(id)
	if c == nil || c.Kubeconfig != "/k" || c.Domain != "apps.example.com" || !c.Allows("bob@example.com") || c.Allows("eve@example.com") {
		t.Errorf("cluster after setting its users: %+v", c)
	}
	if log := strings.TrimSpace(runGit(t, reg.Dir(), "log", "-1", "--format=%an|%s")); log != "Mengi operator|cluster prod: update" {
		t.Errorf("registry commit %q", log)
	}
}

// TestPruneHoldPercentRange: the agent refuses a share it cannot use.
func TestPruneHoldPercentRange(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	for _, pct := range []string{"0", "101", "-5"} {
		out, err := mengiCmd("agent", "--repo", repo, "--prune-hold-percent", pct).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--prune-hold-percent "+pct+": give 1 to 100") {
			t.Errorf("--prune-hold-percent %s: %v\n%s", pct, err, out)
		}
	}
}
