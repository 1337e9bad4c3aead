package servercmd

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
)

// MaxRequests is --max-requests' default: the requests a server started
// by ServeAPI handles at once, the API, the git endpoint and the webhook
// together. A request with credentials may take any place; one without is
// taken only while fewer than half of them are in progress, so anonymous
// traffic (scanners, a flood of requests without a key) cannot crowd out
// the clients that have a key. Past its share a request is answered at
// once, never queued: 503 with Retry-After: 1 and a JSON detail.
//
// Credentials are an Authorization header (a Bearer key for the API,
// Basic for git) or a forge's webhook signature (X-Hub-Signature-256,
// X-Gitea-Signature); they are not checked here, where checking would
// cost what the cap saves: a made-up key passes the cap and is then
// refused 401 by the API.
const MaxRequests = 512

// BusyRetryAfter is the Retry-After (seconds) of a request refused by the
// cap on requests in progress.
const BusyRetryAfter = "1"

// MaxRequestsFlag is --max-requests.
func MaxRequestsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "max-requests", Value: MaxRequests, EnvVars: []string{"MENGI_MAX_REQUESTS"},
		Usage: "requests handled at once (API, git and webhook); past half of it a request without credentials gets 503 with Retry-After: 1, past all of it any request does (0: no cap)",
		Action: func(_ *cli.Context, v int) error {
			if v < 0 {
				return fmt.Errorf("--max-requests %d: want a number of requests, 0 or more (0: no cap)", v)
			}
			return nil
		}}
}

// requestLimit is a server's cap on requests in progress (MaxRequests).
type requestLimit struct {
	max        int64 // <= 0: no cap
	log        *slog.Logger
	inProgress atomic.Int64
	lastLog    atomic.Int64 // unix nanoseconds of the last "server busy" line
}

func newRequestLimit(max int, log *slog.Logger) *requestLimit {
	return &requestLimit{max: int64(max), log: log}
}

// wrap puts h behind the cap. /healthz is not counted and never refused:
// it costs next to nothing, and a liveness probe refused under load would
// have the server restarted, losing the requests in progress.
func (l *requestLimit) wrap(h http.Handler) http.Handler {
	if l.max <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		credentials := hasCredentials(r)
		n, ok := l.admit(credentials)
		if !ok {
			l.refuse(w, n, credentials)
			return
		}
		defer l.inProgress.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// hasCredentials tells whether r carries credentials, checked or not.
func hasCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-Hub-Signature-256") != "" || r.Header.Get("X-Gitea-Signature") != ""
}

// admit takes a place for a request: any while fewer than max are in
// progress for one with credentials, only while fewer than half of max
// are for one without. Refused, it returns the requests in progress.
func (l *requestLimit) admit(credentials bool) (int64, bool) {
	for {
		n := l.inProgress.Load()
		if n >= l.max || (!credentials && 2*n >= l.max) {
			return n, false
		}
		if l.inProgress.CompareAndSwap(n, n+1) {
			return n + 1, true
		}
	}
}

// refuse answers a request over the cap with n in progress: 503, at once.
func (l *requestLimit) refuse(w http.ResponseWriter, n int64, credentials bool) {
	detail := fmt.Sprintf("Server busy: %d requests in progress, the most it handles at once; retry after %s s", n, BusyRetryAfter)
	if !credentials {
		detail = fmt.Sprintf("Server busy: %d requests in progress, and a request without credentials is taken only while fewer than half of %d are; retry after %s s",
			n, l.max, BusyRetryAfter)
	}
	// One log line a second at most: a flood of refusals is not a flood
	// of lines.
	now, last := time.Now().UnixNano(), l.lastLog.Load()
	if now-last >= int64(time.Second) && l.lastLog.CompareAndSwap(last, now) {
		l.log.Warn("server busy: refusing requests (503)", "in_progress", n, "max_requests", l.max, "credentials", credentials)
	}
	w.Header().Set("Retry-After", BusyRetryAfter)
	api.WriteDetail(w, http.StatusServiceUnavailable, detail)
}
