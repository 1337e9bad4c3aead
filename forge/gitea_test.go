package forge_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/forge"
	"github.com/mengi-cloud/gitops/forge/forgetest"
)

// The Gitea kind against a real Gitea: the status appears on the commit, the
// marked comment is created once and then edited in place.
func TestGiteaReporter(t *testing.T) {
	f := forgetest.Start(t)
	const repo = "deployments"
	clone := f.CreateRepo(repo)
	work := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"-c", "user.name=E", "-c", "user.email=e@example.test", "commit", "-q", "--allow-empty", "-m", "initial"},
		{"push", "-q", f.AuthCloneURL(repo), "main"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", work}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	f.WaitNotEmpty(repo)
	head := f.CommitFile(repo, "main", "edit", "apps/demo.yaml", []byte("replicas: 3\n"), "edit")
	pr := f.OpenPR(repo, "edit", "main", "Edit")

	ep, err := forge.ParseCloneURL(clone, "")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Kind != forge.KindGitea || ep.APIURL != f.APIURL() || ep.Repo != f.Owner()+"/"+repo {
		t.Fatalf("endpoint %+v", ep)
	}
	c, err := forge.New(forge.Options{Kind: ep.Kind, APIURL: ep.APIURL, Repo: ep.Repo, Token: f.Token(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := c.SetStatus(ctx, head, forge.Status{State: forge.StatePending, Description: "validating"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 300)
	if err := c.SetStatus(ctx, head, forge.Status{State: forge.StateFailure, Description: long, TargetURL: "http://example.test/run/1"}); err != nil {
		t.Fatal(err)
	}
	st := f.CommitStatuses(repo, head)
	if len(st) != 2 {
		t.Fatalf("statuses %+v", st)
	}
	newest := st[0]
	if newest.Context != forge.DefaultContext || newest.State != "failure" || newest.TargetURL != "http://example.test/run/1" ||
		len([]rune(newest.Description)) != forge.MaxDescription {
		t.Errorf("newest status %+v", newest)
	}

	const marker = "<!-- mengi/validate -->"
	if err := c.UpsertComment(ctx, pr, marker, "apps/demo.yaml: replicas must be ≤ 2"); err != nil {
		t.Fatal(err)
	}
	cs := f.PRComments(repo, pr)
	if len(cs) != 1 || cs[0].Body != marker+"\napps/demo.yaml: replicas must be ≤ 2" {
		t.Fatalf("comments after the first upsert: %+v", cs)
	}
	id := cs[0].ID
	if err := c.UpsertComment(ctx, pr, marker, marker+"\nall files valid"); err != nil {
		t.Fatal(err)
	}
	cs = f.PRComments(repo, pr)
	if len(cs) != 1 || cs[0].ID != id || cs[0].Body != marker+"\nall files valid" {
		t.Fatalf("comments after the second upsert: %+v (first id %d)", cs, id)
	}

	// An error names the status and never the token. (Gitea 1.26 answers
	// 500 "issue does not exist" to the comments of a missing issue.)
	err = c.UpsertComment(ctx, 999, marker, "x")
	var ae *forge.APIError
	if !errors.As(err, &ae) || ae.StatusCode < 400 || !strings.Contains(ae.Excerpt, "does not exist") ||
		strings.Contains(err.Error(), f.Token()) {
		t.Errorf("comment on a missing pull request: %v", err)
	}
	bad, _ := forge.New(forge.Options{Kind: forge.KindGitea, APIURL: f.APIURL(), Repo: ep.Repo, Token: "not-a-token"})
	if err := bad.SetStatus(ctx, head, forge.Status{State: forge.StateSuccess}); !errors.As(err, &ae) || ae.StatusCode != 401 ||
		strings.Contains(err.Error(), "not-a-token") {
		t.Errorf("bad token: %v", err)
	}
}
