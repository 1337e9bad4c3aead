package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// httpError is an error with the status and `detail` it is answered with.
type httpError struct {
	status     int
	detail     any
	retryAfter string // Retry-After, when set
}

func (e *httpError) Error() string {
	if s, ok := e.detail.(string); ok {
		return s
	}
	return http.StatusText(e.status)
}

func errorf(status int, detail string) *httpError { return &httpError{status: status, detail: detail} }

// validation answers 422 with Pydantic-style entries.
func validation(errs schema.Errors) *httpError {
	return &httpError{status: http.StatusUnprocessableEntity, detail: []schema.FieldError(errs)}
}

var (
	errDeploymentNotFound = errorf(http.StatusNotFound, "Deployment not found")
	errClusterNotFound    = errorf(http.StatusNotFound, "Cluster not found")
)

// RemoteRetryAfter is the Retry-After (seconds) of a 503 answered while
// the Git remote is unavailable.
const RemoteRetryAfter = "5"

// DiskFullRetryAfter is the Retry-After (seconds) of a 503 answered
// while the disk holding the repository is full: an operator has to free
// space, which takes a while; the store takes writes again the moment
// there is some.
const DiskFullRetryAfter = "30"

// diskFullDetail is the detail of a write refused for a full disk. It
// names no path: the log has them.
const diskFullDetail = "The server's disk is full: the change was not written. Try again once an operator has freed space."

const remoteUnavailableDetail = "The Git server holding the deployments repository did not accept the change in time " +
	"(unreachable, or it refused Mengi's push); nothing was written. Try again later."

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	newEncoder(w).Encode(v)
}

// newEncoder is the JSON encoder of every body the API writes: HTML
// characters kept as they are, a newline after the value.
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// WriteDetail answers status with {"detail": detail}, as the API answers
// its errors: for handlers served beside the API (package servercmd's
// cap on requests in progress). Headers such as Retry-After are set on w
// before the call.
func WriteDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"detail": detail})
}

// DetailJSON is the body WriteDetail writes, for an answer written
// without a ResponseWriter (package servercmd rewrites net/http's
// plain-text errors with it).
func DetailJSON(detail string) []byte {
	var b bytes.Buffer
	newEncoder(&b).Encode(map[string]any{"detail": detail})
	return b.Bytes()
}

// writeError answers err: its own status and detail for an httpError, and
// a logged 500 without internals for anything else.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var he *httpError
	if errors.As(err, &he) {
		if he.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		if he.retryAfter != "" {
			w.Header().Set("Retry-After", he.retryAfter)
		}
		writeJSON(w, he.status, map[string]any{"detail": he.detail})
		return
	}
	if errors.Is(err, gitstore.ErrRemoteUnavailable) {
		// The forge did not take the commit: nothing was written, and the
		// process recovers when it answers again.
		log.Warn("request failed: the Git remote did not take the change", "err", err)
		w.Header().Set("Retry-After", RemoteRetryAfter)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"detail": remoteUnavailableDetail})
		return
	}
	if errors.Is(err, gitstore.ErrDiskFull) {
		// Nothing was written; the store logged the full disk once.
		log.Debug("request failed: the repository's disk is full", "err", err)
		w.Header().Set("Retry-After", DiskFullRetryAfter)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"detail": diskFullDetail})
		return
	}
	log.Error("request failed", "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]any{"detail": "Internal Server Error"})
}
