package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Forge kinds accepted by Options.Kind.
const (
	KindGitea  = "gitea"
	KindGitHub = "github"
)

// DefaultContext is the status context used when Status.Context is empty.
const DefaultContext = "mengi/validate"

// MaxDescription is the longest status description, in characters, that
// SetStatus sends (GitHub's limit); longer ones are cut and end with "…".
const MaxDescription = 140

// State is the state of a commit status.
type State string

// The commit status states common to Gitea and GitHub.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// Status is a commit status: the check mark (or cross) beside a commit.
type Status struct {
	State State
	// Context names the check; DefaultContext when empty. A new status with
	// the same context replaces the previous one in the forge's summary.
	Context string
	// Description is a one-line summary, trimmed and cut to MaxDescription.
	Description string
	// TargetURL is a link to the details; optional.
	TargetURL string
}

// Reporter reports on pull requests. *Client implements it; tests of code
// that reports can fake it.
type Reporter interface {
	// SetStatus sets a commit status on sha.
	SetStatus(ctx context.Context, sha string, s Status) error
	// UpsertComment edits the comment of pull request pr whose body
	// contains marker, or creates one if there is none. The body sent always
	// contains marker (it is prepended when body lacks it).
	UpsertComment(ctx context.Context, pr int, marker, body string) error
}

// Options configure a Client.
type Options struct {
	// Kind is KindGitea or KindGitHub.
	Kind string
	// APIURL is the API's root: "http://host:3000/api/v1" for Gitea,
	// "https://api.github.com" (or "https://host/api/v3") for GitHub.
	APIURL string
	// Repo is "owner/name".
	Repo string
	// Token is an access token allowed to write statuses and comments.
	Token string
	// HTTPClient is the client for every request; one with a 30 s timeout
	// when nil.
	HTTPClient *http.Client
	// Logger receives a debug line per request and an info line per comment
	// created or edited; nothing is logged when nil.
	Logger *slog.Logger
}

// Client is a Reporter for one repository on one forge.
type Client struct {
	kind   string
	api    *url.URL
	owner  string
	name   string
	token  string
	http   *http.Client
	logger *slog.Logger
}

var _ Reporter = (*Client)(nil)

// New returns a Client for o.Repo on the forge at o.APIURL.
func New(o Options) (*Client, error) {
	switch o.Kind {
	case KindGitea, KindGitHub:
	default:
		return nil, fmt.Errorf("forge: unknown kind %q (want %q or %q)", o.Kind, KindGitea, KindGitHub)
	}
	u, err := url.Parse(strings.TrimRight(o.APIURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("forge: API URL %q: want http(s)://host[/path]", o.APIURL)
	}
	if u.User != nil {
		return nil, errors.New("forge: the API URL must not contain credentials; use Options.Token")
	}
	owner, name, ok := strings.Cut(o.Repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("forge: repository %q: want owner/name", o.Repo)
	}
	if o.Token == "" {
		return nil, errors.New("forge: no token")
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Client{kind: o.Kind, api: u, owner: owner, name: name, token: o.Token, http: hc,
		logger: lg.With("forge", o.Kind, "repo", o.Repo)}, nil
}

// SetStatus sets the commit status s on commit sha.
func (c *Client) SetStatus(ctx context.Context, sha string, s Status) error {
	if !isCommitID(sha) {
		return fmt.Errorf("forge: status: %q is not a full commit id", sha)
	}
	switch s.State {
	case StatePending, StateSuccess, StateFailure, StateError:
	default:
		return fmt.Errorf("forge: status: unknown state %q", s.State)
	}
	if s.Context == "" {
		s.Context = DefaultContext
	}
	body := map[string]string{
		"state":       string(s.State),
		"context":     s.Context,
		"description": Truncate(s.Description, MaxDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	if err := c.do(ctx, http.MethodPost, c.repoPath("statuses", sha), nil, body, nil); err != nil {
		return err
	}
	c.logger.DebugContext(ctx, "commit status set", "sha", sha, "context", s.Context, "state", s.State)
	return nil
}

// comment is an issue or pull-request comment, as both forges return it.
type comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// UpsertComment edits the comment of pull request pr that contains marker,
// or creates one. When several contain marker (two runs raced), the oldest is
// edited.
func (c *Client) UpsertComment(ctx context.Context, pr int, marker, body string) error {
	if pr <= 0 {
		return fmt.Errorf("forge: comment: pull request number %d", pr)
	}
	if strings.TrimSpace(marker) == "" {
		return errors.New("forge: comment: empty marker")
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	comments, err := c.listComments(ctx, pr)
	if err != nil {
		return err
	}
	msg := map[string]string{"body": body}
	for _, cm := range comments {
		if !strings.Contains(cm.Body, marker) {
			continue
		}
		if cm.Body == body {
			c.logger.DebugContext(ctx, "comment unchanged", "pr", pr, "comment", cm.ID)
			return nil
		}
		if err := c.do(ctx, http.MethodPatch, c.repoPath("issues", "comments", strconv.FormatInt(cm.ID, 10)), nil, msg, nil); err != nil {
			return err
		}
		c.logger.InfoContext(ctx, "comment edited", "pr", pr, "comment", cm.ID)
		return nil
	}
	var created comment
	if err := c.do(ctx, http.MethodPost, c.repoPath("issues", strconv.Itoa(pr), "comments"), nil, msg, &created); err != nil {
		return err
	}
	c.logger.InfoContext(ctx, "comment created", "pr", pr, "comment", created.ID)
	return nil
}

// maxPages bounds GitHub's comment pagination (100 per page).
const maxPages = 100

// listComments returns the comments of pull request pr, oldest first.
func (c *Client) listComments(ctx context.Context, pr int) ([]comment, error) {
	path := c.repoPath("issues", strconv.Itoa(pr), "comments")
	if c.kind == KindGitea {
		// Gitea returns every comment of the issue in one response.
		var all []comment
		err := c.do(ctx, http.MethodGet, path, nil, nil, &all)
		return all, err
	}
	const perPage = 100
	var all []comment
	for page := 1; page <= maxPages; page++ {
		var batch []comment
		q := url.Values{"per_page": {strconv.Itoa(perPage)}, "page": {strconv.Itoa(page)}}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &batch); err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if len(batch) < perPage {
			return all, nil
		}
	}
	return nil, fmt.Errorf("forge: pull request %d has more than %d comments", pr, maxPages*perPage)
}

// repoPath returns the API path /repos/{owner}/{name}/elem..., escaped.
func (c *Client) repoPath(elem ...string) string {
	parts := append([]string{"repos", c.owner, c.name}, elem...)
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/" + strings.Join(parts, "/")
}

// maxResponse bounds the response bodies read.
const maxResponse = 16 << 20

// do sends one request to the API path (below APIURL) with query q and the
// JSON of in as the body (none when nil), and decodes a 2xx response into out
// (ignored when nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	target := c.api.String() + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("forge: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("forge: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch c.kind {
	case KindGitHub:
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	default:
		req.Header.Set("Authorization", "token "+c.token)
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "mengi-gitops")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no credentials (New refuses
		// them); the token travels only in a header.
		return fmt.Errorf("forge: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	c.logger.DebugContext(ctx, "forge request", "method", method, "path", path, "status", resp.StatusCode,
		"duration", time.Since(start))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Excerpt: c.excerpt(b)}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("forge: %s %s: decoding the response: %w", method, path, err)
	}
	return nil
}

// APIError is a response of the forge outside 2xx.
type APIError struct {
	Method     string
	Path       string // below the API URL, without the query
	StatusCode int
	Excerpt    string // the start of the response body, on one line
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("forge: %s %s: HTTP %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Excerpt != "" {
		s += ": " + e.Excerpt
	}
	return s
}

// excerpt returns the start of a response body on one line, without the
// token should the forge echo it.
func (c *Client) excerpt(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	s = strings.ReplaceAll(s, c.token, "[token]")
	return Truncate(s, 200)
}

// Truncate returns s without surrounding white space, cut to at most max
// characters (runes), the last being "…" when it was cut.
func Truncate(s string, max int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:max-1])) + "…"
}

// isCommitID reports whether s is a full SHA-1 or SHA-256 commit id.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}
