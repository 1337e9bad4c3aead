package forgetest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// git runs git in dir with a fixed identity and no user configuration, and
// returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Engineer", "-c", "user.email=eng@example.test",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files into the work tree dir and commits them.
func commit(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

// The checker on a plain local bare repository: forward pushes pass; a force
// push, a deletion and a reflog turned on late fail.
func TestCheckNoForcePush(t *testing.T) {
	bare := filepath.Join(t.TempDir(), "r.git")
	work := t.TempDir()
	git(t, t.TempDir(), "init", "-q", "--bare", bare)
	git(t, bare, "config", "core.logAllRefUpdates", "always")
	git(t, work, "init", "-q")
	a := commit(t, work, "a", map[string]string{"a": "1"})
	git(t, work, "push", "-q", bare, "main")
	commit(t, work, "b", map[string]string{"b": "1"})
	git(t, work, "push", "-q", bare, "main")
	if err := CheckNoForcePush(bare, "main"); err != nil {
		t.Fatalf("forward pushes: %v", err)
	}
	if err := CheckNoForcePush(bare, "other"); err == nil {
		t.Error("a branch without a reflog passed")
	}

	git(t, work, "reset", "-q", "--hard", a)
	commit(t, work, "c", map[string]string{"c": "1"})
	git(t, work, "push", "-q", "--force", bare, "main")
	err := CheckNoForcePush(bare, "main")
	if err == nil || !strings.Contains(err.Error(), "force-pushed") {
		t.Fatalf("after a force push: %v", err)
	}
	t.Logf("force push: %v", err)

	// A reflog begun after the first push.
	bare2 := filepath.Join(t.TempDir(), "r2.git")
	git(t, t.TempDir(), "init", "-q", "--bare", bare2)
	git(t, work, "push", "-q", bare2, "main")
	git(t, bare2, "config", "core.logAllRefUpdates", "always")
	commit(t, work, "d", map[string]string{"d": "1"})
	git(t, work, "push", "-q", bare2, "main")
	if err := CheckNoForcePush(bare2, "main"); err == nil || !strings.Contains(err.Error(), "creation") {
		t.Errorf("reflog begun late: %v", err)
	}
}

func TestParseReflog(t *testing.T) {
	z := strings.Repeat("0", 40)
	x := strings.Repeat("a", 40)
	es, err := parseReflog([]byte(z + " " + x + " Eng <e@x> 1700000000 +0000\tpush\n"))
	if err != nil || len(es) != 1 || es[0].old != z || es[0].new != x || es[0].msg != "push" {
		t.Fatalf("%+v %v", es, err)
	}
	if _, err := parseReflog([]byte("garbage\n")); err == nil {
		t.Error("garbage parsed")
	}
}

// sample is what TestForge records of a delivery, for PAYLOADS.md.
type sample struct {
	Event, EventType string
	Headers          []string
	Keys             []string
	Action           string
	Fields           map[string]any
}

func summarize(d Delivery) sample {
	s := sample{Event: d.Event, EventType: d.EventType, Action: d.Action(), Fields: map[string]any{}}
	for k := range d.Header {
		s.Headers = append(s.Headers, k)
	}
	for k := range d.Payload {
		s.Keys = append(s.Keys, k)
	}
	sort.Strings(s.Headers)
	sort.Strings(s.Keys)
	get := func(m map[string]any, path ...string) any {
		var v any = m
		for _, p := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = mm[p]
		}
		return v
	}
	for _, p := range [][]string{{"ref"}, {"before"}, {"after"}, {"number"}, {"repository", "full_name"},
		{"pull_request", "head", "sha"}, {"pull_request", "head", "ref"}, {"pull_request", "base", "sha"},
		{"pull_request", "base", "ref"}, {"pull_request", "merged"}, {"pull_request", "merge_commit_sha"},
		{"pull_request", "state"}, {"sender", "login"}, {"pusher", "login"}} {
		if v := get(d.Payload, p...); v != nil {
			s.Fields[strings.Join(p, ".")] = v
		}
	}
	return s
}

// TestForge runs the whole flow a GitOps test needs against one Gitea.
func TestForge(t *testing.T) {
	f := Start(t)
	if f.URL() == "" || f.Token() == "" || f.Owner() != Admin {
		t.Fatalf("URL %q, token %q, owner %q", f.URL(), f.Token(), f.Owner())
	}
	const repo = "deployments"
	clone := f.CreateRepo(repo)
	if clone != f.CloneURL(repo) {
		t.Errorf("clone URL %q, want %q", clone, f.CloneURL(repo))
	}
	sink := NewHookSink(t, "hook-s3cret")
	f.AddWebhook(repo, sink.URL(), "hook-s3cret", []string{"push", "pull_request"})

	// The service's first push, over HTTP with the token.
	work := t.TempDir()
	git(t, work, "init", "-q")
	first := commit(t, work, "initial", map[string]string{"apps/demo.yaml": "replicas: 1\n"})
	start := time.Now()
	git(t, work, "push", "-q", f.AuthCloneURL(repo), "main")
	f.WaitNotEmpty(repo)
	t.Logf("push + not empty: %v", time.Since(start))
	if got := f.BranchHead(repo, "main"); got != first {
		t.Fatalf("main at %s, pushed %s", got, first)
	}
	d := sink.Wait("push of main", PushTo("main", first))
	if !d.SignatureOK {
		t.Errorf("push delivery: bad signature %q", d.Header.Get("X-Hub-Signature-256"))
	}
	t.Logf("push delivered %v after the push began", d.Received.Sub(start))
	samples := map[string]sample{"push (git push)": summarize(d)}

	// An engineer with write access edits a file on a new branch.
	engTok := f.CreateUser("engineer")
	if engTok == "" {
		t.Fatal("no token for engineer")
	}
	f.AddCollaborator(repo, "engineer", "write")
	bump := f.CommitFile(repo, "main", "bump", "apps/demo.yaml", []byte("replicas: 3\n"), "bump replicas")
	if got := f.BranchHead(repo, "bump"); got != bump {
		t.Fatalf("bump at %s, commit %s", got, bump)
	}
	pr := f.OpenPR(repo, "bump", "main", "Bump demo")
	opened := sink.Wait("pull request opened", PullRequest(pr, "opened"))
	samples["pull_request opened"] = summarize(opened)
	if s := samples["pull_request opened"]; s.Fields["pull_request.head.sha"] != bump || s.Fields["repository.full_name"] != Admin+"/"+repo {
		t.Errorf("opened: %+v", s.Fields)
	}
	// A second commit on the branch: "synchronized".
	bump2 := f.CommitFile(repo, "bump", "", "apps/other.yaml", []byte("replicas: 2\n"), "add other")
	synced := sink.Wait("pull request synchronized", PullRequest(pr, "synchronized"))
	samples["pull_request synchronized"] = summarize(synced)
	if synced.Payload["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] != bump2 {
		t.Errorf("synchronized: head %v, want %s", samples["pull_request synchronized"].Fields["pull_request.head.sha"], bump2)
	}
	del := f.DeleteFile(repo, "bump", "", "apps/other.yaml", "remove other")
	sink.Wait("pull request synchronized by the delete", func(d Delivery) bool {
		return PullRequest(pr, "synchronized")(d) && d.Payload["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] == del
	})

	// Statuses and comments round trip (the forge package's client is tested
	// against this too; here the raw API).
	if err := f.call(http.MethodPost, f.repoPath(repo, "statuses", del), map[string]string{
		"state": "failure", "context": "mengi/validate", "description": "1 file invalid", "target_url": "http://example.test/r/1",
	}, nil); err != nil {
		t.Fatal(err)
	}
	st := f.CommitStatuses(repo, del)
	if len(st) != 1 || st[0] != (Status{Context: "mengi/validate", State: "failure", Description: "1 file invalid", TargetURL: "http://example.test/r/1"}) {
		t.Errorf("statuses %+v", st)
	}
	if err := f.callAs(engTok, http.MethodPost, f.repoPath(repo, "issues", strconv.Itoa(pr), "comments"), map[string]string{"body": "looks good"}, nil); err != nil {
		t.Fatal(err)
	}
	if cs := f.PRComments(repo, pr); len(cs) != 1 || cs[0].Body != "looks good" || cs[0].ID == 0 {
		t.Errorf("comments %+v", cs)
	}

	// Merge through the API; the push of main is delivered and logged.
	start = time.Now()
	merged := f.MergePR(repo, pr, "merge")
	got := f.GetPR(repo, pr)
	if !got.Merged || got.MergeCommitSHA != merged {
		t.Errorf("after merge: %+v, main at %s", got, merged)
	}
	d = sink.Wait("push of the merge", PushTo("main", merged))
	t.Logf("merge push delivered %v after the merge call", d.Received.Sub(start))
	samples["push (API merge)"] = summarize(d)
	samples["pull_request closed (merged)"] = summarize(sink.Wait("pull request closed", PullRequest(pr, "closed")))
	for _, d := range sink.Deliveries() {
		if !d.SignatureOK {
			t.Errorf("%s/%s: bad signature", d.EventType, d.Action())
		}
	}

	// Reopened: a second PR closed and reopened through the API.
	f.CommitFile(repo, "main", "second", "apps/x.yaml", []byte("x: 1\n"), "x")
	pr2 := f.OpenPR(repo, "second", "main", "Second")
	for _, state := range []string{"closed", "open"} {
		if err := f.call(http.MethodPatch, f.repoPath(repo, "pulls", strconv.Itoa(pr2)), map[string]string{"state": state}, nil); err != nil {
			t.Fatal(err)
		}
	}
	samples["pull_request reopened"] = summarize(sink.Wait("pull request reopened", PullRequest(pr2, "reopened")))

	// A commit straight to main through the contents API.
	direct := f.CommitFile(repo, "main", "", "apps/demo.yaml", []byte("replicas: 4\n"), "direct edit")

	// The reflog of main logged the git push, the API merge and the API commit.
	f.AssertNoForcePush(t, repo)
	es, err := parseReflog(mustRead(t, filepath.Join(f.RepoDir(repo), "logs", "refs", "heads", "main")))
	if err != nil || len(es) != 3 || es[0].new != first || es[1].new != merged || es[2].new != direct {
		t.Fatalf("reflog of main: %+v %v", es, err)
	}

	// A force push of main is caught.
	git(t, work, "fetch", "-q", f.AuthCloneURL(repo), "main")
	git(t, work, "reset", "-q", "--hard", first)
	commit(t, work, "rewrite", map[string]string{"apps/demo.yaml": "replicas: 9\n"})
	git(t, work, "push", "-q", "--force", f.AuthCloneURL(repo), "main")
	if err := CheckNoForcePush(f.RepoDir(repo), "main"); err == nil || !strings.Contains(err.Error(), "force-pushed") {
		t.Errorf("after a force push to the forge: %v", err)
	}

	if dir := os.Getenv("MENGI_FORGE_PAYLOAD_DIR"); dir != "" {
		b, _ := json.MarshalIndent(samples, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "samples.json"), b, 0o644); err != nil {
			t.Error(err)
		}
		for i, d := range sink.Deliveries() {
			name := filepath.Join(dir, strconv.Itoa(i)+"-"+d.EventType+"-"+d.Action())
			_ = os.WriteFile(name+".json", d.Body, 0o644)
			h, _ := json.MarshalIndent(d.Header, "", "  ")
			_ = os.WriteFile(name+".headers", h, 0o644)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Start fails, never skips, without $MENGI_FORGE_BIN: run in a child process.
func TestStartFailsWithoutBin(t *testing.T) {
	if os.Getenv("FORGETEST_CHILD") == "1" {
		Start(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartFailsWithoutBin$", "-test.v")
	cmd.Env = append(os.Environ(), "FORGETEST_CHILD=1", EnvBin+"=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "make forge-bin") || !strings.Contains(string(out), "--- FAIL") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
