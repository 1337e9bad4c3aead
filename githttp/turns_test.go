package githttp_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// TestPushUnderWriteLoadGetsATurn: while writers move the branch every
// few milliseconds, an engineer's push from a clone is refused (fetch
// first); their `git pull --rebase && git push` then lands at the first
// try, because the refused push earned them a turn at their next fetch.
// The writers go on afterwards, and the pushed file is in the store.
func TestPushUnderWriteLoadGetsATurn(t *testing.T) {
	e := newEnv(t)
	work := e.clone(t, e.adaKey)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); ctx.Err() == nil; i++ {
				if err := e.setReplicas(int64(w)*1_000_000 + i); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	for acked.Load() < 100 {
		time.Sleep(time.Millisecond)
	}

	write(t, work, "docs/turns.md", "pushed under load\n")
	mustGit(t, work, "add", "docs")
	mustGit(t, work, "commit", "-q", "-m", "docs: a push under load")
	if out, err := git(work, "push", "-q", "origin", "main"); err == nil || !strings.Contains(out, "fetch first") {
		t.Fatalf("a push from a stale clone under load: %v\n%s", err, out)
	}
	before := acked.Load()
	if out, err := git(work, "pull", "-q", "--rebase"); err != nil {
		t.Fatalf("git pull --rebase: %v\n%s", err, out)
	}
	if out, err := git(work, "push", "-q", "origin", "main"); err != nil {
		t.Fatalf("the push after the turn was refused: %v\n%s", err, out)
	}
	if !strings.Contains(e.log.String(), "push turn given") {
		t.Errorf("no turn in the log:\n%s", e.log.String())
	}
	pushed := mustGit(t, work, "rev-parse", "HEAD")
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() < before+100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if acked.Load() < before+100 {
		t.Fatal("the writers did not go on after the push")
	}
	cancel()
	wg.Wait()
	mustGit(t, e.repos.Deployments.Dir(), "merge-base", "--is-ancestor", pushed, "main")
	if out := mustGit(t, e.repos.Deployments.Dir(), "show", "main:docs/turns.md"); out != "pushed under load" {
		t.Errorf("main:docs/turns.md = %q", out)
	}
	mustGit(t, e.repos.Deployments.Dir(), "fsck", "--strict", "--no-dangling")
}

// setReplicas commits a change of the deployment's replicas, as the API
// does for a PATCH.
func (e *env) setReplicas(n int64) error {
	_, err := e.repos.Deployments.Apply(context.Background(), func(v *gitstore.View) (*gitstore.Commit, error) {
		r := v.Deployment(e.id)
		d := *r.Deployment()
		spec := d.Spec
		spec.Replicas = &n
		d.Spec = spec
		content, err := schema.EncodeFile(&d)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Ada", Email: "ada@example.com"}, Message: "replicas\n",
			Changes: []gitstore.Change{{Path: e.path, Content: content, Value: &d}}}, nil
	})
	return err
}
