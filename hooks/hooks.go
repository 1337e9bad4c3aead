// Package hooks receives the forge's webhooks on POST /hooks/git: a push
// to the deployments branch makes the store fetch at once, and a pull
// request opened, synchronized or reopened against it is queued for its
// check. Gitea and GitHub payloads are both read (they share the fields
// used here), and every delivery must carry an HMAC-SHA256 signature of
// its body with the shared secret (X-Hub-Signature-256, or Gitea's
// X-Gitea-Signature): a bad or missing one is answered 401 and nothing is
// fetched. Nothing in a payload names where to fetch from: the store
// fetches from its own remote.
package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Path is where the handler is mounted.
const Path = "/hooks/git"

// MaxBody bounds a delivery's body (GitHub caps payloads at 25 MB).
const MaxBody = 25 << 20

// Syncer is what a push needs of the store: fetch the remote now.
type Syncer interface {
	Sync()
}

// PullRequest is a pull request to check.
type PullRequest struct {
	Number  int
	HeadSHA string // the commit the forge says the PR is at
	BaseRef string // branch it merges into
	Action  string // opened, synchronized, reopened
}

// Queue takes pull requests to check (prcheck.Checker).
type Queue interface {
	Enqueue(PullRequest)
}

// Options configure the handler.
type Options struct {
	// Secret is the webhook's shared secret; required.
	Secret []byte
	// Branch is the deployments branch; default main.
	Branch string
	// Store is fetched on a push to Branch.
	Store Syncer
	// PullRequests, when set, receives pull requests into Branch.
	PullRequests Queue
	Logger       *slog.Logger
}

// Handler serves POST /hooks/git.
type Handler struct {
	opts Options
	log  *slog.Logger
}

// New returns the webhook handler.
func New(opts Options) (*Handler, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("hooks: the webhook secret is empty")
	}
	if opts.Store == nil {
		return nil, errors.New("hooks: no store to sync")
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, log: opts.Logger}, nil
}

// ServeHTTP checks the delivery's signature, then acts on its event.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "webhooks are delivered with POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the delivery is over %d MiB", MaxBody>>20))
			return
		}
		answer(w, http.StatusBadRequest, "reading the delivery: "+err.Error())
		return
	}
	if msg := h.verify(r.Header, body); msg != "" {
		h.log.Warn("webhook refused", "reason", msg, "remote", r.RemoteAddr, "delivery", delivery(r.Header))
		answer(w, http.StatusUnauthorized, msg)
		return
	}
	status, msg := h.handle(eventOf(r.Header), body)
	h.log.Info("webhook", "event", eventOf(r.Header), "delivery", delivery(r.Header), "status", status, "result", msg)
	answer(w, status, msg)
}

// verify returns why the delivery's signature does not hold ("" when it
// does).
func (h *Handler) verify(hdr http.Header, body []byte) string {
	sig, ok := strings.CutPrefix(hdr.Get("X-Hub-Signature-256"), "sha256=")
	if !ok {
		sig = hdr.Get("X-Gitea-Signature")
	}
	if sig == "" {
		return "missing signature: send X-Hub-Signature-256 (sha256=HEX) or X-Gitea-Signature, the HMAC-SHA256 of the body with the webhook secret"
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return "the signature is not hexadecimal"
	}
	mac := hmac.New(sha256.New, h.opts.Secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "the signature does not match the body: check that the webhook's secret is the one in --webhook-secret-file"
	}
	return ""
}

// handle acts on a verified delivery and returns the answer.
func (h *Handler) handle(event string, body []byte) (int, string) {
	switch event {
	case "ping":
		return http.StatusOK, "pong"
	case "push":
		return h.push(body)
	case "pull_request":
		return h.pullRequest(body)
	case "":
		return http.StatusBadRequest, "no event: the delivery lacks X-GitHub-Event and X-Gitea-Event"
	}
	return http.StatusOK, "ignored: event " + event + " is not used (send push and pull_request)"
}

type pushPayload struct {
	Ref   *string `json:"ref"`
	After string  `json:"after"`
}

func (h *Handler) push(body []byte) (int, string) {
	var p pushPayload
	if msg := decode(body, &p); msg != "" {
		return http.StatusBadRequest, msg
	}
	if p.Ref == nil {
		return http.StatusBadRequest, "push payload: field ref is missing"
	}
	if *p.Ref != "refs/heads/"+h.opts.Branch {
		return http.StatusOK, "ignored: a push to " + *p.Ref + ", not refs/heads/" + h.opts.Branch
	}
	h.opts.Store.Sync()
	return http.StatusAccepted, "fetching " + h.opts.Branch
}

type prPayload struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number int `json:"number"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
	} `json:"pull_request"`
}

// prActions are the actions that change what a pull request would merge
// (GitHub says synchronize, Gitea synchronized).
var prActions = map[string]bool{"opened": true, "reopened": true, "synchronize": true, "synchronized": true}

func (h *Handler) pullRequest(body []byte) (int, string) {
	var p prPayload
	if msg := decode(body, &p); msg != "" {
		return http.StatusBadRequest, msg
	}
	if p.PullRequest == nil {
		return http.StatusBadRequest, "pull_request payload: field pull_request is missing"
	}
	n := p.Number
	if n == 0 {
		n = p.PullRequest.Number
	}
	switch {
	case n <= 0:
		return http.StatusBadRequest, "pull_request payload: field number is missing"
	case !validSHA(p.PullRequest.Head.SHA):
		return http.StatusBadRequest, "pull_request payload: pull_request.head.sha is not a commit id"
	case !prActions[p.Action]:
		return http.StatusOK, "ignored: pull request action " + p.Action
	case p.PullRequest.Base.Ref != h.opts.Branch:
		return http.StatusOK, "ignored: the pull request merges into " + p.PullRequest.Base.Ref + ", not " + h.opts.Branch
	case h.opts.PullRequests == nil:
		return http.StatusOK, "ignored: pull request checks are off in this process"
	}
	h.opts.PullRequests.Enqueue(PullRequest{Number: n, HeadSHA: p.PullRequest.Head.SHA, BaseRef: p.PullRequest.Base.Ref, Action: p.Action})
	return http.StatusAccepted, fmt.Sprintf("checking pull request #%d", n)
}

// decode reads a JSON payload, returning a message when it is not one.
func decode(body []byte, v any) string {
	if err := json.Unmarshal(body, v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return fmt.Sprintf("payload: field %s: expected %s, got a JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return "the payload is not valid JSON: " + err.Error()
	}
	return ""
}

func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func eventOf(h http.Header) string {
	if e := h.Get("X-GitHub-Event"); e != "" {
		return e
	}
	return h.Get("X-Gitea-Event")
}

func delivery(h http.Header) string {
	if d := h.Get("X-GitHub-Delivery"); d != "" {
		return d
	}
	return h.Get("X-Gitea-Delivery")
}

// answer writes {"detail": msg}, as the API does.
func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"detail": msg})
}
