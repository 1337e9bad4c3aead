package forgetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// waitLimit bounds every Wait method.
const waitLimit = 30 * time.Second

// httpError is an API response outside 2xx.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

func isStatus(err error, code int) bool {
	var he *httpError
	return errors.As(err, &he) && he.status == code
}

// call sends one API request as the admin (path below /api/v1) and decodes a
// 2xx response into out when out is not nil.
func (f *Forge) call(method, path string, in, out any) error {
	return f.callAs(f.token, method, path, in, out)
}

func (f *Forge) callAs(token, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.APIURL()+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.Join(strings.Fields(string(b)), " ")
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return &httpError{status: resp.StatusCode, msg: msg}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding %.200s: %w", b, err)
		}
	}
	return nil
}

// must fails the test when err is not nil.
func (f *Forge) must(err error, what string, args ...any) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("forgetest: %s: %v", fmt.Sprintf(what, args...), err)
	}
}

func (f *Forge) repoPath(repo string, elem ...string) string {
	parts := append([]string{"repos", Admin, repo}, elem...)
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/" + strings.Join(parts, "/")
}

// CloneURL returns the clone URL of repo (owned by Owner), without credentials.
func (f *Forge) CloneURL(repo string) string {
	return fmt.Sprintf("%s/%s/%s.git", f.url, Admin, repo)
}

// AuthCloneURL returns the clone URL of repo with the admin's token as the
// password, for git push and fetch.
func (f *Forge) AuthCloneURL(repo string) string {
	return fmt.Sprintf("http://%s:%s@%s/%s/%s.git", Admin, f.token, strings.TrimPrefix(f.url, "http://"), Admin, repo)
}

// CreateRepo creates an empty public repository owned by Owner, with default
// branch main, that logs every update of its refs, and returns its clone URL.
// Push to it, then call WaitNotEmpty before reading it through the API.
func (f *Forge) CreateRepo(name string) (cloneURL string) {
	f.t.Helper()
	var out struct {
		CloneURL string `json:"clone_url"`
	}
	f.must(f.call(http.MethodPost, "/user/repos", map[string]any{
		"name": name, "private": false, "default_branch": "main", "auto_init": false,
	}, &out), "create repository %s", name)
	dir := f.RepoDir(name)
	if out, err := exec.Command("git", "-C", dir, "config", "core.logAllRefUpdates", "always").CombinedOutput(); err != nil {
		f.t.Fatalf("forgetest: turning the reflog on in %s: %v\n%s", dir, err, out)
	}
	return out.CloneURL
}

// WaitNotEmpty waits until Gitea no longer flags repo as empty after its first
// push. Before that, reads of its contents can fail (Gitea 1.26 panics in
// the contents API) and pull requests get 404.
func (f *Forge) WaitNotEmpty(repo string) {
	f.t.Helper()
	f.waitFor("repository "+repo+" not empty", func() (bool, error) {
		var r struct {
			Empty bool `json:"empty"`
		}
		err := f.call(http.MethodGet, f.repoPath(repo), nil, &r)
		return err == nil && !r.Empty, err
	})
}

// waitFor polls cond every 50 ms until it returns true, and fails the test
// after waitLimit.
func (f *Forge) waitFor(what string, cond func() (bool, error)) {
	f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("forgetest: %s: not within %v (last error: %v)", what, waitLimit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateUser creates a user (not an admin), email name@example.test, and
// returns an access token of theirs with every scope.
func (f *Forge) CreateUser(name string) (token string) {
	f.t.Helper()
	f.must(f.call(http.MethodPost, "/admin/users", map[string]any{
		"username": name, "email": name + "@example.test", "password": password,
		"must_change_password": false,
	}, nil), "create user %s", name)
	// A user creates their own tokens, with basic authentication.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, _ := json.Marshal(map[string]any{"name": "forgetest", "scopes": []string{"all"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.APIURL()+"/users/"+url.PathEscape(name)+"/tokens", bytes.NewReader(b))
	f.must(err, "token of %s", name)
	req.SetBasicAuth(name, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.http.Do(req)
	f.must(err, "token of %s", name)
	defer resp.Body.Close()
	var out struct {
		SHA1 string `json:"sha1"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.SHA1 == "" {
		f.t.Fatalf("forgetest: token of %s: HTTP %d: %.300s", name, resp.StatusCode, body)
	}
	return out.SHA1
}

// AddCollaborator gives user permission ("read", "write" or "admin") on repo.
func (f *Forge) AddCollaborator(repo, user, permission string) {
	f.t.Helper()
	f.must(f.call(http.MethodPut, f.repoPath(repo, "collaborators", user), map[string]any{"permission": permission}, nil),
		"add %s to %s", user, repo)
}

// AddWebhook registers a webhook of type gitea on repo that posts JSON to
// url, signed with secret, for events (for example "push" and
// "pull_request"; "pull_request" includes the synchronized events), on every
// branch. It returns the hook's id.
func (f *Forge) AddWebhook(repo, url, secret string, events []string) int64 {
	f.t.Helper()
	var out struct {
		ID int64 `json:"id"`
	}
	f.must(f.call(http.MethodPost, f.repoPath(repo, "hooks"), map[string]any{
		"type": "gitea", "active": true, "events": events, "branch_filter": "*",
		"config": map[string]string{"url": url, "content_type": "json", "secret": secret},
	}, &out), "add a webhook to %s", repo)
	return out.ID
}

// fileSHA returns the blob id of path on branch, "" when there is no such file.
func (f *Forge) fileSHA(repo, branch, path string) (string, error) {
	var out struct {
		SHA string `json:"sha"`
	}
	err := f.call(http.MethodGet, f.repoPath(repo, "contents")+"/"+escapePath(path)+"?ref="+url.QueryEscape(branch), nil, &out)
	if isStatus(err, http.StatusNotFound) {
		return "", nil
	}
	return out.SHA, err
}

type fileCommit struct {
	Commit struct {
		SHA string `json:"sha"`
	} `json:"commit"`
}

// CommitFile creates or replaces path on branch with content, in one commit
// authored by the admin, and returns the commit's id. When newBranch is not
// empty, the commit goes to a new branch newBranch made from branch.
func (f *Forge) CommitFile(repo, branch, newBranch, path string, content []byte, message string) (sha string) {
	f.t.Helper()
	blob, err := f.fileSHA(repo, branch, path)
	f.must(err, "read %s on %s of %s", path, branch, repo)
	body := map[string]any{
		"content": base64.StdEncoding.EncodeToString(content), "message": message, "branch": branch,
	}
	if newBranch != "" {
		body["new_branch"] = newBranch
	}
	method := http.MethodPost
	if blob != "" {
		method, body["sha"] = http.MethodPut, blob
	}
	var out fileCommit
	f.must(f.call(method, f.repoPath(repo, "contents")+"/"+escapePath(path), body, &out), "commit %s to %s", path, repo)
	return out.Commit.SHA
}

// DeleteFile deletes path on branch (or on a new branch newBranch made from
// it) in one commit and returns the commit's id.
func (f *Forge) DeleteFile(repo, branch, newBranch, path, message string) (sha string) {
	f.t.Helper()
	blob, err := f.fileSHA(repo, branch, path)
	f.must(err, "read %s on %s of %s", path, branch, repo)
	if blob == "" {
		f.t.Fatalf("forgetest: delete %s: no such file on %s of %s", path, branch, repo)
	}
	body := map[string]any{"sha": blob, "message": message, "branch": branch}
	if newBranch != "" {
		body["new_branch"] = newBranch
	}
	var out fileCommit
	f.must(f.call(http.MethodDelete, f.repoPath(repo, "contents")+"/"+escapePath(path), body, &out), "delete %s in %s", path, repo)
	return out.Commit.SHA
}

// OpenPR opens a pull request from head into base and returns its number.
func (f *Forge) OpenPR(repo, head, base, title string) (number int) {
	f.t.Helper()
	var out struct {
		Number int `json:"number"`
	}
	f.must(f.call(http.MethodPost, f.repoPath(repo, "pulls"), map[string]any{
		"title": title, "head": head, "base": base, "body": "opened by forgetest",
	}, &out), "open a pull request %s→%s in %s", head, base, repo)
	return out.Number
}

// PR is the part of a pull request the tests look at.
type PR struct {
	Number         int    `json:"number"`
	State          string `json:"state"` // open, closed
	Merged         bool   `json:"merged"`
	Mergeable      bool   `json:"mergeable"`
	MergeCommitSHA string `json:"merge_commit_sha"`
	Head           struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"base"`
}

// GetPR returns pull request number of repo.
func (f *Forge) GetPR(repo string, number int) PR {
	f.t.Helper()
	var pr PR
	f.must(f.call(http.MethodGet, f.repoPath(repo, "pulls", strconv.Itoa(number)), nil, &pr), "pull request %d of %s", number, repo)
	return pr
}

// WaitMergeable waits until Gitea has checked that pull request number
// merges cleanly (the check is asynchronous).
func (f *Forge) WaitMergeable(repo string, number int) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("pull request %d of %s mergeable", number, repo), func() (bool, error) {
		var pr PR
		err := f.call(http.MethodGet, f.repoPath(repo, "pulls", strconv.Itoa(number)), nil, &pr)
		return err == nil && pr.Mergeable, err
	})
}

// MergePR merges pull request number with style (merge, rebase,
// rebase-merge, squash, fast-forward-only) and returns the merge commit
// (or, when Gitea does not name one, the new head of the base branch). It
// waits until the pull request is mergeable first, and tries again while
// Gitea answers 405 "Please try again later" (it re-checks the pull
// request each time the base branch moves) or 409 (the base branch moved
// during the merge).
func (f *Forge) MergePR(repo string, number int, style string) (sha string) {
	f.t.Helper()
	f.WaitMergeable(repo, number)
	f.waitFor(fmt.Sprintf("merge pull request %d of %s", number, repo), func() (bool, error) {
		err := f.call(http.MethodPost, f.repoPath(repo, "pulls", strconv.Itoa(number), "merge"), map[string]any{
			"Do": style, "merge_message_field": fmt.Sprintf("Merge pull request #%d", number),
		}, nil)
		// 409 "merge push out of date": the base branch moved while Gitea
		// merged; an engineer would press the button again.
		if err != nil && !isStatus(err, http.StatusMethodNotAllowed) && !isStatus(err, http.StatusConflict) {
			f.must(err, "merge pull request %d of %s", number, repo)
		}
		return err == nil, err
	})
	pr := f.GetPR(repo, number)
	if !pr.Merged {
		f.t.Fatalf("forgetest: pull request %d of %s not merged after the merge call: %+v", number, repo, pr)
	}
	if pr.MergeCommitSHA != "" {
		return pr.MergeCommitSHA
	}
	return f.BranchHead(repo, pr.Base.Ref)
}

// BranchHead returns the commit id branch points at.
func (f *Forge) BranchHead(repo, branch string) string {
	f.t.Helper()
	var out struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	f.must(f.call(http.MethodGet, f.repoPath(repo, "branches", branch), nil, &out), "branch %s of %s", branch, repo)
	return out.Commit.ID
}

// Status is a commit status as Gitea returns it.
type Status struct {
	Context     string `json:"context"`
	State       string `json:"status"` // Gitea names the state "status"
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// CommitStatuses returns the statuses set on commit sha (up to 50), newest
// first. (Gitea's sort "leastindex" orders by index descending; its default
// orders by creation second, which leaves statuses set within one second in
// any order.)
func (f *Forge) CommitStatuses(repo, sha string) []Status {
	f.t.Helper()
	var out []Status
	f.must(f.call(http.MethodGet, f.repoPath(repo, "statuses", sha)+"?limit=50&sort=leastindex", nil, &out), "statuses of %s in %s", sha, repo)
	return out
}

// Comment is a pull-request (issue) comment.
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// PRComments returns the comments of pull request number, oldest first.
func (f *Forge) PRComments(repo string, number int) []Comment {
	f.t.Helper()
	var out []Comment
	f.must(f.call(http.MethodGet, f.repoPath(repo, "issues", strconv.Itoa(number), "comments"), nil, &out),
		"comments of pull request %d of %s", number, repo)
	return out
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
