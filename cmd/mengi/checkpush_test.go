package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// TestPushCheck: with the hook `mengi serve` installs, an engineer's git
// push that breaks a rule is refused with one line per problem naming the
// file, the line, the field and the rule, and the branch does not move; a
// good push goes through.
func TestPushCheck(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "repo")
	repos, err := registry.OpenRepos(ctx, repo, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repos.Close()
	_, ada, err := repos.Registry.AddKey(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, bob, err := repos.Registry.AddKey(ctx, "Bob", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := repos.Registry.AddCluster(ctx, registry.ClusterSpec{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := repos.Registry.AddCluster(ctx, registry.ClusterSpec{Name: "closed", Users: []string{"bob@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, errs := schema.ParseFile(example)
	if errs != nil {
		t.Fatal(errs)
	}
	d.Metadata.UserID, d.Spec.ClusterID, d.Spec.Name = ada.ID, cl.ID, "web"
	content, _ := schema.EncodeFile(d)
	path := gitstore.DeploymentPath(cl.ID, "web")
	if _, err := repos.Deployments.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Ada", Email: "ada@example.com"}, Message: "web\n",
			Changes: []gitstore.Change{{Path: path, Content: content, Value: d}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := servercmd.InstallPushCheck(repos, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	work := filepath.Join(t.TempDir(), "work")
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", work}, args...)...)
		cmd.Env = append(os.Environ(), helperEnv+"=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=Grace", "GIT_AUTHOR_EMAIL=grace@example.com", "GIT_COMMITTER_NAME=Grace", "GIT_COMMITTER_EMAIL=grace@example.com")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := exec.Command("git", "clone", "-q", repo, work).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := string(content)
	head := func() string { return repos.Deployments.Head().String() }
	before := head()
	write(path, strings.Replace(strings.Replace(file, "replicas: 1", "replicas: many", 1), "user_id: "+ada.ID, "user_id: "+bob.ID, 1))
	stolen := strings.Replace(strings.Replace(file, "name: web", "name: denied", 1), "cluster_id: "+cl.ID, "cluster_id: "+closed.ID, 1)
	write(gitstore.DeploymentPath(closed.ID, "denied"), strings.Replace(stolen, "id: "+d.Metadata.ID, "id: 01a21a25-4c3c-7695-80a2-000000000099", 1))
	write("users/"+bob.ID+".yaml", "apiVersion: mengi.cloud/v1\nkind: User\n")
	if out, err := git("add", "-A"); err != nil {
		t.Fatal(out)
	}
	if out, err := git("commit", "-qm", "bad"); err != nil {
		t.Fatal(out)
	}
	out, err := git("push", "origin", "main")
	if err == nil {
		t.Fatalf("a bad push went through:\n%s", out)
	}
	for _, want := range []string{
		"remote: " + path + ":16: spec.replicas: Input should be a valid integer",
		"remote: " + gitstore.DeploymentPath(closed.ID, "denied") + ":11: spec.cluster_id: user ada@example.com may not deploy to cluster closed",
		"remote: users/" + bob.ID + ".yaml: users and clusters live in the operator's registry",
		"push refused: 3 problems",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused push's output lacks %q:\n%s", want, out)
		}
	}
	if head() != before {
		t.Error("the branch moved")
	}

	// The owner alone changed: refused, naming the rule.
	if out, err := git("reset", "-q", "--hard", "origin/main"); err != nil {
		t.Fatal(out)
	}
	write(path, strings.Replace(file, "user_id: "+ada.ID, "user_id: "+bob.ID, 1))
	git("commit", "-qam", "take it")
	if out, err := git("push", "origin", "main"); err == nil || !strings.Contains(out, path+":7: metadata.user_id: deployment "+d.Metadata.ID+" belongs to user "+ada.ID) {
		t.Errorf("an owner change: %v\n%s", err, out)
	}

	// The id changed: refused, naming the rule.
	git("reset", "-q", "--hard", "origin/main")
	otherID := "0190a5c4-0000-7000-8000-00000000beef"
	write(path, strings.Replace(file, "id: "+d.Metadata.ID, "id: "+otherID, 1))
	git("commit", "-qam", "new id")
	if out, err := git("push", "origin", "main"); err == nil || !strings.Contains(out, path+":6: metadata.id: this file holds deployment "+d.Metadata.ID+"; a deployment's id never changes") {
		t.Errorf("an id change: %v\n%s", err, out)
	}

	// A good change goes through.
	git("reset", "-q", "--hard", "origin/main")
	write(path, strings.Replace(file, "replicas: 1", "replicas: 2", 1))
	git("commit", "-qam", "two replicas")
	if out, err := git("push", "origin", "main"); err != nil {
		t.Fatalf("a good push was refused: %v\n%s", err, out)
	}
}
