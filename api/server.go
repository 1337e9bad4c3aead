package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// MaxBodyBytes bounds request bodies; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Options configure the API server.
type Options struct {
	// Logger receives one line per request.
	Logger *slog.Logger
	// Now gives timestamps; default time.Now.
	Now func() time.Time
	// RateLimit is the requests per second each API key may make (a
	// burst of two seconds' worth); beyond it requests are answered 429
	// with Retry-After. 0: no limit.
	RateLimit float64
}

// Registry is what the API needs of the operator's registry (package
// registry): who holds a key, the clusters, and the caller's own keys.
type Registry interface {
	UserByKey(sha string) *schema.User
	Cluster(id string) *schema.Cluster
	KeyUsed(sha string, now time.Time) error
	LastUsed(sha string) *time.Time
	CreateKey(ctx context.Context, userID, name string, expires *time.Time, author gitstore.Signature, trailers ...gitstore.Trailer) (string, schema.APIKey, error)
	DeleteKey(ctx context.Context, userID, keyID string, author gitstore.Signature, trailers ...gitstore.Trailer) error
}

// Server is the deployments API.
type Server struct {
	store  *gitstore.Store
	reg    Registry
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	limits *keyLimits
	heavy  chan struct{} // slots of large writes (see heavySlot)
}

// New returns the API over the deployments repository store, with users
// and clusters from reg.
func New(store *gitstore.Store, reg Registry, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{store: store, reg: reg, log: opts.Logger, now: opts.Now, mux: http.NewServeMux(), limits: newKeyLimits(opts.RateLimit),
		heavy: make(chan struct{}, HeavyRequests)}
	s.mux.HandleFunc("POST /deployments", s.authed(s.createDeployment))
	s.mux.HandleFunc("GET /deployments", s.authed(s.listDeployments))
	s.mux.HandleFunc("GET /deployments/{id}", s.authed(s.getDeployment))
	s.mux.HandleFunc("PATCH /deployments/{id}", s.authed(s.updateDeployment))
	s.mux.HandleFunc("DELETE /deployments/{id}", s.authed(s.deleteDeployment))
	s.mux.HandleFunc("GET /deployments/{id}/history", s.authed(s.deploymentHistory))
	s.mux.HandleFunc("POST /keys", s.authed(s.createKey))
	s.mux.HandleFunc("GET /keys", s.authed(s.listKeys))
	s.mux.HandleFunc("DELETE /keys/{id}", s.authed(s.deleteKey))
	s.mux.HandleFunc("GET /openapi.json", s.openAPI)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "head": s.store.Head().String()})
	})
	return s
}

// ServeHTTP routes a request, answering unknown paths and methods the way
// FastAPI does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" || len(reqID) > 128 {
		reqID = newRequestID()
	}
	w.Header().Set("X-Request-Id", reqID)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, reqID))
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "panic", p, "method", r.Method, "path", r.URL.Path, "request_id", reqID)
			if rw.status == 0 {
				writeJSON(rw, http.StatusInternalServerError, map[string]any{"detail": "Internal Server Error"})
			}
		}
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"took", time.Since(start).Round(time.Microsecond), "request_id", reqID)
	}()
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.notRouted(rw, r)
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// notRouted answers 405 for a known path with another method, listing the
// methods it has in Allow (RFC 9110 §15.5.6 requires it), else 404.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead) // the mux serves HEAD with GET
			}
		}
	}
	if allow != nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// handler is an authenticated handler; its error is answered by writeError.
type handler func(w http.ResponseWriter, r *http.Request, user *schema.User) error

func (s *Server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, user)
		}
		if err != nil {
			writeError(w, s.log, err)
		}
	}
}

var errBodyTooLarge = errorf(http.StatusRequestEntityTooLarge, "Request body too large: at most 1 MiB (1048576 bytes) is accepted")

// readJSONBody reads a JSON request body: 415 for another media type, 413
// past MaxBodyBytes.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !(len(mt) > 5 && mt[len(mt)-5:] == "+json")) {
			return nil, errorf(http.StatusUnsupportedMediaType, "Unsupported media type '"+ct+"': send 'application/json'")
		}
	}
	// A declared length over the limit is refused before the body is
	// read, so a client that sent `Expect: 100-continue` gets the 413
	// instead of `100 Continue`.
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Could not read the request body: "+err.Error())
	}
	return body, nil
}
