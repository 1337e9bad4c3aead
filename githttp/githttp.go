// Package githttp serves the deployments repository over git's smart HTTP
// protocol, so engineers clone and push it from the API server itself,
// with no forge: `git clone http://HOST/git/deployments.git`.
//
// It runs `git http-backend` as a CGI program for every request. A request
// authenticates with HTTP Basic: the password is one of the user's API
// keys, the user name is ignored (git asks for both; anything goes). A
// request without credentials, or with a key that is unknown or expired,
// gets 401 with a Basic challenge, so git asks for credentials; a key of a
// user without git access (schema.User.GitAccess, granted by an operator
// with `mengi keys add --git-access`) gets 403. Only the repository's smart
// HTTP paths are served (info/refs, git-upload-pack, git-receive-pack and
// HEAD under /git/deployments.git/, whatever the folder is called on
// disk); everything else is 404.
//
// Pushes go through git-receive-pack and so through the repository's
// pre-receive hook (`mengi check-push`, see package pushcheck): a push
// that breaks a rule is refused and the engineer reads one "remote:" line
// per problem. The hook sees PushEnv set, and then takes pushes of main
// only. Non-fast-forward pushes are refused (the history is the audit
// log), and pushed objects are checked (receive.fsckObjects). The store
// takes a push in as it does any commit made by others: its ref watcher
// sees the branch move. Under a full API write load, an engineer whose
// push found the branch moved gets a turn at their next fetch: the branch
// stands still until their push (see PushTurn).
package githttp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// Prefix is where the handler is mounted; the repository is
// Prefix + RepoName.
const Prefix = "/git/"

// RepoName is the repository's name in URLs, whatever its folder's name.
const RepoName = "deployments.git"

// PushEnv is set to "1" in the environment of git-http-backend and so of
// the pre-receive hook: the push came through this endpoint.
const PushEnv = "MENGI_GIT_HTTP"

// MaxBodyBytes bounds a request's body (a push's pack, a fetch's
// negotiation); larger ones get 413.
const MaxBodyBytes = 64 << 20

// memBody is how much of a chunked body is kept in memory before the rest
// goes to a temporary file.
const memBody = 1 << 20

// Authenticator finds the user holding an API key; *registry.Registry is
// one.
type Authenticator interface {
	// UserByKey returns the user holding the key with this SHA-256
	// (registry.HashKey), or nil.
	UserByKey(sha string) *schema.User
	// KeyUsed notes that the key with this SHA-256 authenticated a request.
	KeyUsed(sha string, now time.Time) error
}

// Options configure the handler.
type Options struct {
	// RepoDir is the deployments repository, a bare repository on disk.
	RepoDir string
	// Auth finds the user of a key.
	Auth Authenticator
	// Logger receives one line per request (never a key) and what
	// git-http-backend writes to stderr.
	Logger *slog.Logger
	// Now gives the time keys expire against; default time.Now.
	Now func() time.Time
	// Yielder, when set, gives an engineer whose push found the branch
	// moved a turn (see PushTurn); nil: no turns.
	Yielder Yielder
}

// Handler serves the repository over smart HTTP; mount it at Prefix.
type Handler struct {
	git     string // path of the git executable
	root    string // GIT_PROJECT_ROOT: the repository's parent folder
	repo    string // the repository folder's name
	dir     string // the repository
	auth    Authenticator
	log     *slog.Logger
	now     func() time.Time
	turns   *turns // nil without a Yielder
	baseEnv []string
}

// New returns the handler of the repository opts.RepoDir. It fails when
// git is not on PATH.
func New(opts Options) (*Handler, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git endpoint: %w", err)
	}
	dir, err := filepath.Abs(opts.RepoDir)
	if err != nil {
		return nil, fmt.Errorf("git endpoint: %w", err)
	}
	if opts.Auth == nil {
		return nil, fmt.Errorf("git endpoint: no authenticator")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{git: git, root: filepath.Dir(dir), repo: filepath.Base(dir), dir: dir,
		auth: opts.Auth, log: opts.Logger, now: opts.Now}
	if opts.Yielder != nil {
		h.turns = newTurns(opts.Yielder)
	}
	// The hook is this program (`mengi check-push`): it keeps the
	// process's MENGI_ settings (its memory limit, its log level). Nothing
	// else of the server's environment reaches git.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MENGI_") || strings.HasPrefix(kv, "TMPDIR=") {
			h.baseEnv = append(h.baseEnv, kv)
		}
	}
	h.baseEnv = append(h.baseEnv,
		"GIT_PROJECT_ROOT="+h.root,
		"GIT_HTTP_EXPORT_ALL=1",
		PushEnv+"=1",
		// Configuration for this endpoint only, whatever the
		// repository's own says.
		"GIT_CONFIG_COUNT=4",
		"GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
		"GIT_CONFIG_KEY_1=http.uploadpack", "GIT_CONFIG_VALUE_1=true",
		"GIT_CONFIG_KEY_2=receive.denyNonFastForwards", "GIT_CONFIG_VALUE_2=true",
		"GIT_CONFIG_KEY_3=receive.fsckObjects", "GIT_CONFIG_VALUE_3=true",
	)
	return h, nil
}

// services are the paths under /git/deployments.git/ that are served, with
// their method.
var services = map[string]string{
	"info/refs":        http.MethodGet,
	"HEAD":             http.MethodGet,
	"git-upload-pack":  http.MethodPost,
	"git-receive-pack": http.MethodPost,
}

// ServeHTTP authenticates the request and hands it to git-http-backend.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	user := h.serve(sw, r)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status(), "took", time.Since(start).Round(time.Millisecond)}
	if s := r.URL.Query().Get("service"); s != "" {
		attrs = append(attrs, "service", s)
	}
	if user != nil {
		attrs = append(attrs, "user", user.Email)
	}
	h.log.Info("git request", attrs...)
}

// serve answers the request and returns its user, once known.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *schema.User {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix+RepoName+"/")
	method, known := services[rest]
	if !ok || !known {
		plain(w, http.StatusNotFound, "not found: this server's git endpoint serves the deployments repository, "+Prefix+RepoName+", only\n")
		return nil
	}
	user, status, msg := h.authenticate(r)
	if status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="mengi"`)
		}
		plain(w, status, msg)
		return user
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		plain(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return user
	}
	if r.ContentLength > MaxBodyBytes {
		plain(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d MiB\n", MaxBodyBytes>>20))
		return user
	}
	body, size, err := spool(r.Body, r.ContentLength)
	if err != nil {
		if isTooLarge(err) {
			plain(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d MiB\n", MaxBodyBytes>>20))
		} else {
			h.log.Warn("git request: reading the body failed", "err", err)
			plain(w, http.StatusBadRequest, "reading the request body failed\n")
		}
		return user
	}
	defer body.Close()
	h.takeTurn(r, rest, user.Email)
	switch rest {
	case "git-receive-pack":
		defer h.turns.pushed(user.Email)
	case "git-upload-pack":
		defer h.turns.fetched(user.Email)
	}

	// git-http-backend sees the request as its own: the repository's
	// folder in PATH_INFO, the user, and not the key.
	req := r.Clone(r.Context())
	req.Header.Del("Authorization")
	req.URL.Path = Prefix + h.repo + "/" + rest
	req.URL.RawPath = ""
	req.Body, req.ContentLength, req.TransferEncoding = body, size, nil
	env := append(append([]string(nil), h.baseEnv...), "REMOTE_USER="+user.Email)
	stderr := &logWriter{log: h.log, user: user.Email}
	defer stderr.flush()
	(&cgi.Handler{
		Path:   h.git,
		Args:   []string{"http-backend"},
		Root:   strings.TrimSuffix(Prefix, "/"),
		Dir:    h.dir,
		Env:    env,
		Logger: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		Stderr: stderr,
	}).ServeHTTP(w, req)
	return user
}

// takeTurn notes a push's advertisement, and gives its user a turn when
// they fetch after one that was not followed by a push (see PushTurn).
func (h *Handler) takeTurn(r *http.Request, rest, user string) {
	if rest != "info/refs" {
		return
	}
	switch r.URL.Query().Get("service") {
	case "git-receive-pack":
		h.turns.advertised(user, time.Now())
	case "git-upload-pack":
		ctx, cancel := context.WithTimeout(r.Context(), PushTurn) // to be granted
		defer cancel()
		took, err := h.turns.fetching(ctx, user, time.Now())
		if err != nil {
			h.log.Warn("a push turn was not given", "user", user, "err", err)
		} else if took {
			h.log.Info("push turn given: the branch stands still until the user's push", "user", user, "after_fetch", PushTurn, "at_most", MaxTurn)
		}
	}
}

// authenticate finds the user of the request's Basic credentials: 0 and
// the user, or the status and message to answer with.
func (h *Handler) authenticate(r *http.Request) (*schema.User, int, string) {
	_, key, ok := r.BasicAuth()
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return nil, http.StatusUnauthorized, "authentication required: give any user name and one of your Mengi API keys as the password\n"
	}
	sha := registry.HashKey(key)
	u := h.auth.UserByKey(sha)
	if u == nil {
		return nil, http.StatusUnauthorized, "invalid API key\n"
	}
	now := h.now()
	for _, k := range u.Keys {
		if k.SHA256 == sha && k.Expired(now) {
			return nil, http.StatusUnauthorized, "API key expired\n"
		}
	}
	if err := h.auth.KeyUsed(sha, now); err != nil {
		h.log.Warn("noting a key's use failed", "err", err)
	}
	if !u.GitAccess {
		return u, http.StatusForbidden, "this API key's user (" + u.Email + ") has no git access; an operator grants it with " +
			"`mengi keys add --git-access --email " + u.Email + " --name NAME ...` (which also makes a new key)\n"
	}
	return u, 0, ""
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// spool returns the body with its size, reading it whole when its length
// is unknown (a chunked body: CGI needs CONTENT_LENGTH): the first memBody
// bytes in memory, the rest in a temporary file. A body over MaxBodyBytes
// is an error (isTooLarge).
func spool(body io.ReadCloser, length int64) (io.ReadCloser, int64, error) {
	if length >= 0 {
		return io.NopCloser(io.LimitReader(body, length)), length, nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(body, memBody+1))
	if err != nil {
		return nil, 0, err
	}
	if n <= memBody {
		return io.NopCloser(&buf), n, nil
	}
	f, err := os.CreateTemp("", "mengi-git-body-*")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name()) // gone when closed
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return nil, 0, err
	}
	m, err := io.Copy(f, io.LimitReader(body, MaxBodyBytes-n+1))
	if err == nil && n+m > MaxBodyBytes {
		err = errTooLarge
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n + m, nil
}

var errTooLarge = fmt.Errorf("request body over %d bytes", MaxBodyBytes)

func isTooLarge(err error) bool { return err == errTooLarge }

// statusWriter notes the status the handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// logWriter logs what git-http-backend writes to stderr, a line at a time.
type logWriter struct {
	log  *slog.Logger
	user string
	buf  []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Warn("git http-backend", "user", w.user, "stderr", string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 4096 {
		w.flush()
	}
	return len(p), nil
}

func (w *logWriter) flush() {
	if len(w.buf) > 0 {
		w.log.Warn("git http-backend", "user", w.user, "stderr", string(w.buf))
		w.buf = nil
	}
}
