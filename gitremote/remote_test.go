package gitremote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/forge/forgetest"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// git runs the git CLI in dir and returns its trimmed output.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// bareRemote makes an empty bare repository whose ref updates are all
// logged, so a test can tell that none was forced.
func bareRemote(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	git(t, t.TempDir(), "init", "--quiet", "--bare", "--initial-branch=main", dir)
	git(t, dir, "config", "core.logAllRefUpdates", "always")
	return dir
}

// assertNoForcePush fails when main on the remote ever moved other than
// forward (forgetest.CheckNoForcePush reads its reflog).
func assertNoForcePush(t testing.TB, remote string) {
	t.Helper()
	if err := forgetest.CheckNoForcePush(remote, "main"); err != nil {
		t.Error(err)
	}
}

// mirror opens a store on a fresh private mirror of remote.
func mirror(t testing.TB, remote string, opts gitstore.Options) *gitstore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mirror")
	return openMirror(t, dir, remote, opts)
}

func openMirror(t testing.TB, dir, remote string, opts gitstore.Options) *gitstore.Store {
	t.Helper()
	s, err := tryOpen(dir, remote, opts)
	if err != nil {
		t.Fatalf("open the mirror: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tryOpen(dir, remote string, opts gitstore.Options) (*gitstore.Store, error) {
	r, err := gitremote.New(dir, gitremote.Options{URL: "file://" + remote, PushWait: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	opts.Remote = r
	return gitstore.Open(dir, opts)
}

const testCluster = "11111111-1111-4111-8111-111111111111"

// note creates deployment name (image tag tag) unless its name is taken.
func note(name, tag string) gitstore.Mutation {
	return func(v *gitstore.View) (*gitstore.Commit, error) {
		if v.DeploymentByName(testCluster, name) != nil {
			return nil, errTaken
		}
		d, content, err := deploymentFile(name, tag)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Ada", Email: "ada@example.com"}, Message: "create " + name,
			Changes: []gitstore.Change{{Path: gitstore.DeploymentPath(testCluster, name), Content: content, Value: d}}}, nil
	}
}

// deploymentFile is a valid docker deployment and its file.
func deploymentFile(name, tag string) (*schema.Deployment, []byte, error) {
	img, replicas := "nginx:"+tag, int64(1)
	ts := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	d := &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: uuid.NewString(), UserID: "00000000-0000-7000-8000-aaaaaaaaaaaa", CreatedAt: ts, UpdatedAt: ts},
		Spec: schema.Spec{ClusterID: testCluster, Name: name, AppType: schema.AppWebApp,
			DeploymentType: schema.TypeDocker, DockerImage: &img, Replicas: &replicas},
	}
	content, err := schema.EncodeFile(d)
	return d, content, err
}

// image reads deployment name's image at the remote's main.
func image(t testing.TB, remote, name string) string {
	t.Helper()
	out := git(t, remote, "show", "main:"+gitstore.DeploymentPath(testCluster, name))
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "docker_image: "); ok {
			return v
		}
	}
	t.Fatalf("no docker_image in %s:\n%s", name, out)
	return ""
}

var errTaken = errors.New("name taken")

func TestWritesLandOnTheRemote(t *testing.T) {
	remote := bareRemote(t)
	s := mirror(t, remote, gitstore.Options{})
	for i := range 3 {
		if _, err := s.Apply(context.Background(), note(fmt.Sprintf("app%d", i), "1")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if got, want := git(t, remote, "rev-parse", "main"), s.Head().String(); got != want {
		t.Fatalf("remote main %s, store head %s", got, want)
	}
	if got := git(t, remote, "log", "--format=%s", "main"); got != "create app2\ncreate app1\ncreate app0" {
		t.Fatalf("remote log:\n%s", got)
	}
	git(t, remote, "fsck", "--strict")
	assertNoForcePush(t, remote)
}

// TestPushRejectedFetchesAndRedoes has a second replica write meanwhile:
// the first one's push is rejected, it fetches, re-runs its writes' checks
// on the new head (a name the other took fails alone) and pushes again.
func TestPushRejectedFetchesAndRedoes(t *testing.T) {
	remote := bareRemote(t)
	slow := gitstore.Options{RemotePoll: time.Hour} // follows only when a push is rejected
	a := mirror(t, remote, slow)
	b := mirror(t, remote, slow)
	if _, err := b.Apply(context.Background(), note("taken", "b")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []gitstore.Mutation{note("taken", "a"), note("free", "a")} {
		wg.Go(func() { _, errs[i] = a.Apply(context.Background(), m) })
	}
	wg.Wait()
	if !errors.Is(errs[0], errTaken) {
		t.Errorf("the write of a name the other replica took: %v, want %v", errs[0], errTaken)
	}
	if errs[1] != nil {
		t.Errorf("the other write: %v", errs[1])
	}
	if got := image(t, remote, "taken"); got != "nginx:b" {
		t.Errorf("deployment taken has image %q on the remote, want b's", got)
	}
	image(t, remote, "free")
	if got, want := git(t, remote, "rev-parse", "main"), a.Head().String(); got != want {
		t.Errorf("remote main %s, store head %s", got, want)
	}
	assertNoForcePush(t, remote)
}

// TestFollowsTheRemote: a commit pushed to the remote by someone else (a
// merged pull request) is taken in at Sync.
func TestFollowsTheRemote(t *testing.T) {
	remote := bareRemote(t)
	s := mirror(t, remote, gitstore.Options{RemotePoll: time.Hour})
	if _, err := s.Apply(context.Background(), note("a", "a")); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	git(t, work, "clone", "--quiet", remote, ".")
	engineersFile(t, work, "b")
	git(t, work, "add", ".")
	git(t, work, "-c", "user.name=Eng", "-c", "user.email=eng@example.com", "commit", "--quiet", "-m", "engineer's change")
	git(t, work, "push", "--quiet", "origin", "main")
	changed := s.Changed()
	s.Sync()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the store did not follow the remote after Sync")
	}
	if got, want := s.Head().String(), git(t, remote, "rev-parse", "main"); got != want {
		t.Fatalf("store head %s, remote %s", got, want)
	}
	var found bool
	s.Read(func(v *gitstore.View) { found = v.DeploymentByName(testCluster, "b") != nil })
	if !found {
		t.Fatal("the engineer's file is not in the store")
	}
}

// TestRemoteDown: writes fail with ErrRemoteUnavailable after a bounded
// wait, nothing is half-written, and the store recovers by itself.
func TestRemoteDown(t *testing.T) {
	remote := bareRemote(t)
	s := mirror(t, remote, gitstore.Options{})
	if _, err := s.Apply(context.Background(), note("a", "a")); err != nil {
		t.Fatal(err)
	}
	before := s.Head()
	away := remote + ".away"
	if err := os.Rename(remote, away); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.Apply(context.Background(), note("b", "b"))
	if !errors.Is(err, gitstore.ErrRemoteUnavailable) {
		t.Fatalf("write with the remote gone: %v, want ErrRemoteUnavailable", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the write failed after %s; the wait is bounded at 2s", took)
	}
	if s.Head() != before {
		t.Errorf("the head moved to %s although the remote never took it", s.Head())
	}
	if err := os.Rename(away, remote); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), note("b", "b")); err != nil {
		t.Fatalf("write after the remote came back: %v", err)
	}
	if got := git(t, remote, "log", "--format=%s", "main"); got != "create b\ncreate a" {
		t.Fatalf("remote log:\n%s", got)
	}
	assertNoForcePush(t, remote)
}

// TestOpenSyncs: a new mirror takes the remote's history; a repository
// with commits the remote lacks pushes them; diverged histories refuse to
// open.
func TestOpenSyncs(t *testing.T) {
	remote := bareRemote(t)
	local := filepath.Join(t.TempDir(), "old-local")
	old, err := gitstore.Open(local, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Apply(context.Background(), note("a", "a")); err != nil {
		t.Fatal(err)
	}
	head := old.Head()
	old.Close()

	s, err := tryOpen(local, remote, gitstore.Options{})
	if err != nil {
		t.Fatalf("open a local repository on an empty remote: %v", err)
	}
	s.Close()
	if got := git(t, remote, "rev-parse", "main"); got != head.String() {
		t.Fatalf("remote main %s, want the local head %s pushed", got, head)
	}

	fresh := mirror(t, remote, gitstore.Options{})
	if fresh.Head() != head {
		t.Fatalf("a fresh mirror opened at %s, want %s", fresh.Head(), head)
	}

	other, err := gitstore.Open(filepath.Join(t.TempDir(), "other"), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Apply(context.Background(), note("z", "z")); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := tryOpen(other.Dir(), remote, gitstore.Options{}); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("open of a diverged repository: %v, want an error saying so", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"https://gitea.example/acme/deployments.git", ""},
		{"http://127.0.0.1:3000/acme/deployments.git", ""},
		{"file:///srv/git/deployments.git", ""},
		{"https://mengi@gitea.example/acme/deployments.git", ""},
		{"https://mengi:s3cret@gitea.example/acme/d.git", "holds a password"},
		{"ssh://git@gitea.example/acme/d.git", "scheme must be"},
		{"git@gitea.example:acme/d.git", ""}, // url.Parse fails on it
		{"https:///acme/d.git", "no host"},
	} {
		_, err := gitremote.ParseURL(tc.url)
		switch {
		case tc.err == "" && tc.url == "git@gitea.example:acme/d.git":
			if err == nil {
				t.Errorf("%s: accepted", tc.url)
			}
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.url, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
}

// engineersFile writes deployment name into the work tree of a clone, as
// an engineer would.
func engineersFile(t testing.TB, work, name string) {
	t.Helper()
	_, content, err := deploymentFile(name, "eng")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(work, filepath.FromSlash(gitstore.DeploymentPath(testCluster, name)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTwoReplicasWritingAtOnce: two mirrors of one remote take writes from
// many goroutines at once, so their pushes keep being rejected by each
// other's: every acknowledged write is on the remote exactly once, and no
// update of main was forced.
func TestTwoReplicasWritingAtOnce(t *testing.T) {
	remote := bareRemote(t)
	opts := gitstore.Options{RemotePoll: 50 * time.Millisecond}
	replicas := []*gitstore.Store{mirror(t, remote, opts), mirror(t, remote, opts)}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for r, s := range replicas {
		for w := range 6 {
			wg.Go(func() {
				for i := range 10 {
					name := fmt.Sprintf("r%d-w%d-%d", r, w, i)
					if _, err := s.Apply(context.Background(), note(name, "1")); err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					mu.Lock()
					acked["create "+name] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	subjects := strings.Split(git(t, remote, "log", "--format=%s", "main"), "\n")
	seen := map[string]int{}
	for _, s := range subjects {
		seen[s]++
	}
	for s := range acked {
		if seen[s] != 1 {
			t.Errorf("%q is on the remote %d times, want once", s, seen[s])
		}
	}
	if len(subjects) != len(acked) {
		t.Errorf("%d commits on the remote, %d writes acknowledged", len(subjects), len(acked))
	}
	git(t, remote, "fsck", "--strict")
	assertNoForcePush(t, remote)
}

// TestOpenWhileRemoteDown: a mirror that holds the branch opens while the
// remote cannot be reached, serves what it has, fails writes as
// unavailable, and writes again once the remote is back; an empty mirror
// does not open (its agent would see no deployments at all).
func TestOpenWhileRemoteDown(t *testing.T) {
	remote := bareRemote(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	s, err := tryOpen(dir, remote, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), note("a", "a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Rename(remote, remote+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := tryOpen(filepath.Join(t.TempDir(), "empty"), remote, gitstore.Options{}); !errors.Is(err, gitstore.ErrRemoteUnavailable) {
		t.Errorf("an empty mirror opened with the remote away: %v", err)
	}
	s, err = tryOpen(dir, remote, gitstore.Options{})
	if err != nil {
		t.Fatalf("a mirror with the branch did not open with the remote away: %v", err)
	}
	defer s.Close()
	var found bool
	s.Read(func(v *gitstore.View) { found = v.DeploymentByName(testCluster, "a") != nil })
	if !found {
		t.Error("the mirror does not serve deployment a")
	}
	if _, err := s.Apply(context.Background(), note("b", "b")); !errors.Is(err, gitstore.ErrRemoteUnavailable) {
		t.Errorf("a write with the remote away: %v, want ErrRemoteUnavailable", err)
	}
	if err := os.Rename(remote+".away", remote); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), note("b", "b")); err != nil {
		t.Fatalf("a write with the remote back: %v", err)
	}
	if got := git(t, remote, "log", "--format=%s", "main"); got != "create b\ncreate a" {
		t.Errorf("remote log:\n%s", got)
	}
}

// TestRewoundRemoteIsNotFollowed: when the remote's branch is reset to an
// older commit by hand, the mirror does not move back (its readers would
// lose acknowledged writes); the next write goes on top of what it has.
func TestRewoundRemoteIsNotFollowed(t *testing.T) {
	remote := bareRemote(t)
	s := mirror(t, remote, gitstore.Options{})
	if _, err := s.Apply(context.Background(), note("a", "a")); err != nil {
		t.Fatal(err)
	}
	first := s.Head()
	if _, err := s.Apply(context.Background(), note("b", "b")); err != nil {
		t.Fatal(err)
	}
	git(t, remote, "update-ref", "refs/heads/main", first.String())
	s.Sync()
	if _, err := s.Apply(context.Background(), note("c", "c")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		var found bool
		s.Read(func(v *gitstore.View) { found = v.DeploymentByName(testCluster, name) != nil })
		if !found {
			t.Errorf("deployment %s is gone from the mirror", name)
		}
	}
	if got := git(t, remote, "log", "--format=%s", "main"); got != "create c\ncreate b\ncreate a" {
		t.Errorf("remote log:\n%s", got)
	}
}
