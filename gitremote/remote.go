// Package gitremote connects a local bare repository (gitstore's private
// mirror) to the repository it mirrors on a Git server: a forge over smart
// HTTP (https://, http://) or a bare repository on a shared disk
// (file://). It runs the git CLI: pushes are fast-forwards only, never
// forced; a push rejected because the branch moved is reported as
// gitstore.ErrRemoteMoved, and a remote that cannot be reached as
// gitstore.ErrRemoteUnavailable once a bounded wait has passed. The token
// travels in the git process's environment as an HTTP header, never on a
// command line, in a URL, in the repository's config or in a log line.
package gitremote

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/gitstore"
)

// Options configure a Remote.
type Options struct {
	// URL is the repository: https://, http:// or file://. A password in
	// it is refused (use Token); a user name is used for the token.
	URL string
	// Branch is the branch mirrored; default "main".
	Branch string
	// Token authenticates over HTTP (as the password of Basic auth; the
	// user name is the URL's, or x-access-token, which GitHub and Gitea
	// both take).
	Token string
	// PushWait bounds how long a push is retried while the remote cannot
	// be reached; default 10s. While the remote is known to be down, a
	// push is tried once.
	PushWait time.Duration
	// Logger receives retries and recoveries.
	Logger *slog.Logger
}

// Remote is a Git server's repository, seen from a local bare repository.
type Remote struct {
	dir    string // the local bare repository
	url    string // without credentials
	branch string
	env    []string
	wait   time.Duration
	log    *slog.Logger

	fetching chan struct{} // holds a token while a fetch runs: one at a time, each writes refs

	mu   sync.Mutex
	down bool // the last push or fetch could not reach the remote
}

// New returns the remote of opts for the local repository dir.
func New(dir string, opts Options) (*Remote, error) {
	u, err := ParseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.PushWait <= 0 {
		opts.PushWait = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	user := "x-access-token"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = nil
	return &Remote{dir: dir, url: u.String(), branch: opts.Branch, env: gitEnv(user, opts.Token),
		wait: opts.PushWait, log: opts.Logger, fetching: make(chan struct{}, 1)}, nil
}

// ParseURL checks a remote's URL: https, http or file, and no password.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--remote %q: %w", redact(raw), err)
	}
	switch u.Scheme {
	case "https", "http":
		if u.Host == "" {
			return nil, fmt.Errorf("--remote %q: no host", redact(raw))
		}
	case "file":
		if u.Path == "" {
			return nil, fmt.Errorf("--remote %q: no path", raw)
		}
	default:
		return nil, fmt.Errorf("--remote %q: the scheme must be https, http or file", redact(raw))
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("--remote %q: the URL holds a password; give the token with --remote-token-file or MENGI_REMOTE_TOKEN instead", redact(raw))
	}
	return u, nil
}

// redact hides the password of a URL that has one.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// URL is the remote's URL, without credentials.
func (r *Remote) URL() string { return r.url }

// gitEnv is the environment of every git process: no prompt, no user or
// system configuration (credential helpers, hooks, aliases), no automatic
// gc in the store's repository, and the token as an HTTP header.
func gitEnv(user, token string) []string {
	env := []string{"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "TMPDIR" || strings.HasPrefix(k, "LC_") || k == "LANG" {
			env = append(env, kv)
		}
	}
	cfg := [][2]string{{"gc.auto", "0"}, {"maintenance.auto", "false"}, {"http.lowSpeedLimit", "1000"}, {"http.lowSpeedTime", "20"}}
	if token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
		cfg = append(cfg, [2]string{"http.extraHeader", "Authorization: Basic " + basic})
	}
	env = append(env, fmt.Sprintf("GIT_CONFIG_COUNT=%d", len(cfg)))
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

// trackingRef is where the local repository keeps the remote branch's head.
func (r *Remote) trackingRef() string { return "refs/remotes/mengi/" + r.branch }

// Fetch brings the remote branch into the local repository and returns its
// head, zero when the remote has no such branch yet.
func (r *Remote) Fetch(ctx context.Context) (plumbing.Hash, error) {
	return r.fetch(ctx, "refs/heads/"+r.branch, r.trackingRef())
}

// FetchRef brings another ref of the remote (a pull request's head,
// refs/pull/7/head) into the local repository under refs/mengi/fetched/
// and returns the commit it names (zero when the remote has no such ref).
func (r *Remote) FetchRef(ctx context.Context, ref string) (plumbing.Hash, error) {
	if !strings.HasPrefix(ref, "refs/") || strings.ContainsAny(ref, " :^~?*[\\") || strings.Contains(ref, "..") {
		return plumbing.ZeroHash, fmt.Errorf("fetch %q: not a ref name", ref)
	}
	return r.fetch(ctx, ref, "refs/mengi/fetched/"+strings.TrimPrefix(ref, "refs/"))
}

func (r *Remote) fetch(ctx context.Context, src, dst string) (plumbing.Hash, error) {
	select {
	case r.fetching <- struct{}{}:
	case <-ctx.Done():
		return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: waiting for another fetch: %w: %w", src, r.url, ctx.Err(), gitstore.ErrRemoteUnavailable)
	}
	defer func() { <-r.fetching }()
	// Only this process fetches into its mirror, one fetch at a time: a
	// lock file left by a fetch that was killed is stale.
	os.Remove(filepath.Join(r.dir, filepath.FromSlash(dst)+".lock"))
	_, stderr, err := r.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", r.url, "+"+src+":"+dst)
	if err != nil {
		if strings.Contains(stderr, "couldn't find remote ref") {
			r.setDown(false)
			return plumbing.ZeroHash, nil
		}
		r.setDown(true)
		return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %s: %w", src, r.url, gitMessage(stderr, err), gitstore.ErrRemoteUnavailable)
	}
	r.setDown(false)
	out, _, err := r.git(ctx, "rev-parse", "--verify", "--quiet", dst)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", dst, err)
	}
	return plumbing.NewHash(strings.TrimSpace(out)), nil
}

// Push moves the remote branch from old to new, a fast-forward: git
// refuses it when the remote branch is not an ancestor of new, and it is
// never forced. A remote that cannot be reached is tried again, with
// growing pauses, until the wait is over.
func (r *Remote) Push(ctx context.Context, old, new plumbing.Hash) error {
	ctx, cancel := context.WithTimeout(ctx, r.pushWait())
	defer cancel()
	pause := 100 * time.Millisecond
	for {
		err := r.pushOnce(ctx, new)
		var retry *retryable
		if !errors.As(err, &retry) {
			r.setDown(false)
			return err
		}
		r.setDown(retry.down)
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			if r.landed(new) {
				// The remote took an attempt whose answer was lost.
				r.setDown(false)
				return nil
			}
			return fmt.Errorf("push to %s: %w: %w", r.url, retry.err, gitstore.ErrRemoteUnavailable)
		case <-timer.C:
		}
		r.log.Warn("push to the remote failed; trying again", "remote", r.url, "err", retry.err)
		pause = min(2*pause, 2*time.Second)
	}
}

// landed asks the remote, briefly, whether its branch is at commit: a push
// whose answer was lost may have landed all the same.
func (r *Remote) landed(commit plumbing.Hash) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _, err := r.git(ctx, "ls-remote", "--", r.url, "refs/heads/"+r.branch)
	if err != nil {
		return false
	}
	f := strings.Fields(out)
	return len(f) >= 1 && f[0] == commit.String()
}

// pushWait is the bound of a push: the whole wait, or one attempt's worth
// while the remote is known to be down (so a queue of writes fails fast
// and the next one finds out whether it is back).
func (r *Remote) pushWait() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return min(r.wait, 3*time.Second)
	}
	return r.wait
}

func (r *Remote) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down && !down {
		r.log.Info("the remote answers again", "remote", r.url)
	}
	r.down = down
}

// retryable is a push failure that may pass: the remote could not be
// reached or answered with a server error.
type retryable struct {
	err  error
	down bool // the remote did not answer (not a busy lock)
}

func (e *retryable) Error() string { return e.err.Error() }

// pushOnce runs one git push and classifies its outcome.
func (r *Remote) pushOnce(ctx context.Context, new plumbing.Hash) error {
	dst := "refs/heads/" + r.branch
	out, stderr, err := r.git(ctx, "push", "--porcelain", "--quiet", "--", r.url, new.String()+":"+dst)
	if err == nil {
		return nil
	}
	status := porcelainStatus(out, dst)
	switch {
	case strings.HasPrefix(status, "[rejected]"):
		return fmt.Errorf("push to %s: %s: %w", r.url, status, gitstore.ErrRemoteMoved)
	case strings.HasPrefix(status, "[remote rejected]") && lockContention(status+stderr):
		// Another push held the branch's lock: try again (and learn then
		// whether it moved).
		return &retryable{err: errors.New(status)}
	case strings.HasPrefix(status, "[remote rejected]"):
		return fmt.Errorf("the remote %s refused the push: %s%s: %w", r.url, status, remoteLines(stderr), gitstore.ErrRemoteUnavailable)
	case refusedCredentials(stderr):
		return fmt.Errorf("the remote %s refused the credentials (check --remote-token-file and the token's scopes): %s: %w",
			r.url, gitMessage(stderr, err), gitstore.ErrRemoteUnavailable)
	}
	return &retryable{err: errors.New(gitMessage(stderr, err)), down: true}
}

// porcelainStatus returns the summary git push --porcelain printed for
// ref dst ("[rejected] (fetch first)", "[remote rejected] (...)"), or "".
func porcelainStatus(out, dst string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) == 3 && strings.HasSuffix(f[1], ":"+dst) {
			return f[2]
		}
	}
	return ""
}

// lockContention tells a push refused because another push held the
// branch's lock at the same moment, which passes.
func lockContention(msg string) bool {
	return strings.Contains(msg, "failed to update ref") || strings.Contains(msg, "cannot lock ref") || strings.Contains(msg, "failed to lock")
}

// refusedCredentials tells an authentication or authorisation failure,
// which waiting does not mend.
func refusedCredentials(stderr string) bool {
	for _, s := range []string{"Authentication failed", "returned error: 401", "returned error: 403", "could not read Username", "could not read Password"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// remoteLines returns the lines the remote's hooks printed ("remote: ..."),
// which say why it refused a push.
func remoteLines(stderr string) string {
	var b strings.Builder
	for _, line := range strings.Split(stderr, "\n") {
		if msg, ok := strings.CutPrefix(line, "remote: "); ok && strings.TrimSpace(msg) != "" {
			b.WriteString("; " + strings.TrimSpace(msg))
		}
	}
	return b.String()
}

// gitMessage is the gist of a failed git command: its last fatal or error
// line, else the last line of stderr, else the exit error.
func gitMessage(stderr string, err error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "error:") {
			return l
		}
	}
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// git runs a git command in the local repository.
func (r *Remote) git(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", r.dir}, args...)...)
	cmd.Env = r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// SIGTERM, not SIGKILL, when ctx ends: git then removes its lock
	// files; WaitDelay kills it if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return out.String(), errb.String(), err
}
