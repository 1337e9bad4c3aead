package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/forge"
	"github.com/mengi-cloud/gitops/forge/forgetest"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/prcheck"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
)

const forgeRepo = "deployments"

var imageRE = regexp.MustCompile(`docker_image: \S+`)

// forgeEnv is the system on a real Gitea: the API's store and the agent's
// store are two mirrors of the forge's repository (two machines, as far
// as they know), the webhook and the pull request checks are served
// beside the API, as `mengi serve --remote` serves them.
type forgeEnv struct {
	*env
	forge  *forgetest.Forge
	secret string
}

// syncAll fetches every mirror on a push webhook.
type syncAll []hooks.Syncer

func (s syncAll) Sync() {
	for _, m := range s {
		m.Sync()
	}
}

func newForgeEnv(t *testing.T) *forgeEnv {
	t.Helper()
	f := forgetest.Start(t)
	cloneURL := f.CreateRepo(forgeRepo)
	dir := t.TempDir()
	logs := &logRecorder{t: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	remote := func(mirror string) *gitremote.Remote {
		r, err := gitremote.New(mirror, gitremote.Options{URL: cloneURL, Token: f.Token(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	apiRemote := remote(dir + "/api-mirror")
	// The poll is long: what the test sees arrives through the webhook.
	repos, err := registry.OpenMirrors(ctx, dir+"/api-mirror", dir+"/registry", log, apiRemote, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	agentStore, err := gitstore.Open(dir+"/agent-mirror", gitstore.Options{Logger: log.With("mirror", "agent"),
		Holds: gitstore.HoldsDeployments, Remote: remote(dir + "/agent-mirror"), RemotePoll: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg := repos.Registry
	key, _, err := reg.AddKey(ctx, "Ada Lovelace", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := reg.AddCluster(ctx, registry.ClusterSpec{Name: "local", Kubeconfig: clustertest.Kubeconfig(t), Domain: "apps.test", Provider: "local"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := forge.New(forge.Options{Kind: forge.KindGitea, APIURL: f.APIURL(), Repo: f.Owner() + "/" + forgeRepo, Token: f.Token(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := render.New(render.Options{CacheDir: dir + "/pr-charts", Logger: log, Fetch: fetchguard.Options{Allow: []string{"127.0.0.1/32"}}})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := prcheck.New(prcheck.Options{GitDir: repos.Deployments.Dir(), Remote: apiRemote, Registry: reg,
		Renderer: renderer, Reporter: prcheck.ForgeReporter(client), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	secret := "webhook-s3cret"
	webhook, err := hooks.New(hooks.Options{Secret: []byte(secret), Store: syncAll{repos.Deployments, agentStore}, PullRequests: checker, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	apiLog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux := http.NewServeMux()
	mux.Handle(hooks.Path, webhook)
	mux.Handle("/", api.New(repos.Deployments, reg, api.Options{Logger: apiLog}))
	srv := httptest.NewServer(mux)
	f.AddWebhook(forgeRepo, srv.URL+hooks.Path, secret, []string{"push", "pull_request"})

	kube, err := kubernetes.NewForConfig(clustertest.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: repos.Deployments.Dir(), store: repos.Deployments, reg: reg, api: srv, key: key, cluster: cl, kube: kube,
		log: log, logs: logs, charts: dir + "/charts", agentStore: agentStore}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		checker.Run(cctx)
	}()
	e.startAgent()
	e.stop = func() {
		srv.Close()
		cancel()
		wg.Wait()
		e.stopTheAgent()
		agentStore.Close()
		repos.Close()
	}
	t.Cleanup(e.stop)
	return &forgeEnv{env: e, forge: f, secret: secret}
}

// forgeGit runs git in the forge's own bare repository.
func (fe *forgeEnv) forgeGit(args ...string) string {
	fe.t.Helper()
	out, err := exec.Command("git", append([]string{"-C", fe.forge.RepoDir(forgeRepo)}, args...)...).CombinedOutput()
	if err != nil {
		fe.t.Fatalf("git %s in the forge's repository: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitStatus waits for the commit status mengi/validate of sha to leave
// pending and returns it.
func (fe *forgeEnv) waitStatus(sha string) forgetest.Status {
	fe.t.Helper()
	var got forgetest.Status
	eventually(fe.t, time.Minute, "status "+prcheck.Context+" of "+sha, func() (bool, string) {
		for _, s := range fe.forge.CommitStatuses(forgeRepo, sha) {
			if s.Context == prcheck.Context && s.State != "pending" {
				got = s
				return true, ""
			}
		}
		return false, fmt.Sprint(fe.forge.CommitStatuses(forgeRepo, sha))
	})
	return got
}

// comment returns the pull request's Mengi comment; there must be one.
func (fe *forgeEnv) comment(pr int) string {
	fe.t.Helper()
	var bodies []string
	for _, c := range fe.forge.PRComments(forgeRepo, pr) {
		if strings.Contains(c.Body, prcheck.Marker) {
			bodies = append(bodies, c.Body)
		}
	}
	if len(bodies) != 1 {
		fe.t.Fatalf("pull request #%d has %d Mengi comments, want 1: %q", pr, len(bodies), bodies)
	}
	return bodies[0]
}

// TestForgePullRequests: an API create lands on Gitea as the user's
// commit; the agent on its own mirror applies it and its status commit
// lands on Gitea's main; an engineer's valid pull request gets a success
// status and a comment with the rendered diff, is merged and applied; an
// invalid one fails naming file:line; history is never force-pushed.
func TestForgePullRequests(t *testing.T) {
	e := newForgeEnv(t)
	id := e.create("web", nil)
	path := e.path("web")
	if got := e.forgeGit("log", "-1", "--format=%an <%ae>", "main", "--", path); got != "Ada Lovelace <ada@example.com>" {
		t.Errorf("the create's commit on Gitea is by %q", got)
	}
	e.forge.WaitNotEmpty(forgeRepo)
	e.waitFor(id, 90*time.Second, "running", status("running"))
	eventually(t, 30*time.Second, "the agent's status commit on Gitea's main", func() (bool, string) {
		file := e.forgeGit("show", "main:"+path)
		return strings.Contains(file, "phase: running"), file
	})

	// An engineer's pull request: two replicas.
	file := e.forgeGit("show", "main:"+path)
	sha := e.forge.CommitFile(forgeRepo, "main", "two-replicas", path, []byte(strings.Replace(file, "replicas: 1", "replicas: 2", 1)), "web: two replicas")
	pr := e.forge.OpenPR(forgeRepo, "two-replicas", "main", "Two replicas for web")
	st := e.waitStatus(sha)
	if st.State != "success" {
		t.Fatalf("status of a valid pull request: %+v", st)
	}
	comment := e.comment(pr)
	for _, want := range []string{"-replicas: 1\n+replicas: 2", "**Deployment web** (changed)", "#### `" + path + "` (changed)"} {
		if !strings.Contains(comment, want) {
			t.Errorf("the comment lacks %q:\n%s", want, comment)
		}
	}
	e.forge.WaitMergeable(forgeRepo, pr)
	merge := e.forge.MergePR(forgeRepo, pr, "merge")
	eventually(t, 90*time.Second, "two replicas applied", func() (bool, string) { return e.deploymentReady(e.ns("web"), "web", 2) })
	eventually(t, 30*time.Second, "a status commit after the merge", func() (bool, string) {
		out := e.forgeGit("log", "--format=%an %s", merge+"..main", "--", path)
		return strings.Contains(out, "Mengi Agent"), out
	})
	if got := e.forgeGit("show", "main:"+path); !strings.Contains(got, "replicas: 2") {
		t.Errorf("the agent's status commit lost the engineer's change:\n%s", got)
	}

	// An invalid pull request fails, naming the file and the line.
	file = e.forgeGit("show", "main:"+path)
	sha = e.forge.CommitFile(forgeRepo, "main", "bad", path, []byte(strings.Replace(file, "replicas: 2", "replicas: many", 1)), "web: many replicas")
	pr = e.forge.OpenPR(forgeRepo, "bad", "main", "Many replicas")
	st = e.waitStatus(sha)
	line := lineOf(file, "  replicas: 2")
	wantProblem := fmt.Sprintf("%s:%s: spec.replicas: Input should be a valid integer", path, line)
	if st.State != "failure" || !strings.Contains(st.Description, fmt.Sprintf("%s:%s: spec.replicas", path, line)) {
		t.Errorf("status of an invalid pull request: %+v, want failure naming %s:%s", st, path, line)
	}
	if c := e.comment(pr); !strings.Contains(c, wantProblem) {
		t.Errorf("the comment lacks %q:\n%s", wantProblem, c)
	}
	// A second push to it is checked again, and the comment is edited.
	sha = e.forge.CommitFile(forgeRepo, "bad", "", path, []byte(strings.Replace(file, "replicas: 2", "replicas: 3", 1)), "web: three replicas")
	if st := e.waitStatus(sha); st.State != "success" {
		t.Errorf("status after the fix: %+v", st)
	}
	if c := e.comment(pr); !strings.Contains(c, "+replicas: 3") {
		t.Errorf("the comment was not brought up to date:\n%s", c)
	}
	e.forge.AssertNoForcePush(t, forgeRepo)
}

// TestForgeConcurrentWritesAndMerges: API writes from several clients
// while engineers merge pull requests: every acknowledged write and every
// merge is on Gitea's main, and main only ever moved forward.
func TestForgeConcurrentWritesAndMerges(t *testing.T) {
	e := newForgeEnv(t)
	e.stopTheAgent() // the writes are what this test is about
	seed := e.create("seed", nil)
	e.forge.WaitNotEmpty(forgeRepo)
	path := e.path("seed")

	const clients, perClient = 4, 6
	var mu sync.Mutex
	var created []string
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				code, d := e.call(http.MethodPost, "/deployments", map[string]any{
					"cluster_id": e.cluster.ID, "name": fmt.Sprintf("app-%d-%d", c, i), "app_type": "web_app",
					"docker_image": "nginx:1.27", "replicas": 1, "container_port": 8080})
				if code != http.StatusCreated {
					t.Errorf("create app-%d-%d: %d %v", c, i, code, d)
					continue
				}
				mu.Lock()
				created = append(created, d["git_path"].(string))
				mu.Unlock()
			}
		}()
	}
	var merges []string
	for i := range 3 {
		file := e.forgeGit("show", "main:"+path)
		branch := fmt.Sprintf("tag-%d", i)
		e.forge.CommitFile(forgeRepo, "main", branch, path, []byte(imageRE.ReplaceAllString(file, fmt.Sprintf("docker_image: nginx:1.27.%d", i))), "seed: nginx 1.27."+fmt.Sprint(i))
		pr := e.forge.OpenPR(forgeRepo, branch, "main", "nginx 1.27."+fmt.Sprint(i))
		e.forge.WaitMergeable(forgeRepo, pr)
		merges = append(merges, e.forge.MergePR(forgeRepo, pr, "merge"))
	}
	wg.Wait()
	if len(created) != clients*perClient {
		t.Fatalf("%d of %d creates were acknowledged", len(created), clients*perClient)
	}
	tree := e.forgeGit("ls-tree", "-r", "--name-only", "main")
	for _, p := range created {
		if !strings.Contains(tree, p) {
			t.Errorf("acknowledged %s is not on Gitea's main", p)
		}
	}
	for _, m := range merges {
		if err := exec.Command("git", "-C", e.forge.RepoDir(forgeRepo), "merge-base", "--is-ancestor", m, "main").Run(); err != nil {
			t.Errorf("merge %s is not on main", m)
		}
	}
	// The API's mirror follows the merges: the seed has the last tag.
	e.waitFor(seed, 30*time.Second, "the last merged image", func(d map[string]any) bool { return d["docker_image"] == "nginx:1.27.2" })
	e.forge.AssertNoForcePush(t, forgeRepo)
}
