package bench_test

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/registry"
)

// TestSeedAndLoad seeds a small repository, checks it with git, and runs a
// short create load against the real API.
func TestSeedAndLoad(t *testing.T) {
	dir := t.TempDir() + "/repo"
	seed, err := bench.SeedRepo(context.Background(), dir, 50, 5)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", dir, "ls-tree", "-r", "--name-only", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	if files := strings.Fields(string(out)); len(files) != 50+5+1 {
		t.Fatalf("seeded %d files, want 56", len(files))
	}
	repos, err := registry.OpenRepos(context.Background(), dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repos.Close()
	s := repos.Deployments
	if got := s.DeploymentsOf(seed.UserID, 0, 1000, nil); len(got) != 50 {
		t.Fatalf("index holds %d deployments, want 50", len(got))
	}
	srv := httptest.NewServer(api.New(s, repos.Registry, api.Options{}))
	defer srv.Close()
	res := bench.CreateLoad(context.Background(), srv.URL, seed.Key, seed.ClusterIDs, 4, time.Minute, 40)
	if res.Requests != 40 || res.Errors != 0 || res.P99 < res.P50 || res.P50 <= 0 {
		t.Fatalf("load: %+v", res)
	}
	count, _ := exec.Command("git", "-C", dir, "rev-list", "--count", "main").Output()
	if strings.TrimSpace(string(count)) != "42" {
		t.Fatalf("commits = %s, want 42 (seed, users and clusters moved to the registry, one per create)", count)
	}
}
