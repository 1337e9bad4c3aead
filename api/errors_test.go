package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/api"
)

// TestNotFoundAndMethodNotAllowed: unknown paths answer 404 and known paths
// with another method 405 with Allow, in FastAPI's words, before any
// authentication.
func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/", http.StatusNotFound, ""},
		{"GET", "/nope", http.StatusNotFound, ""},
		{"GET", "/Deployments", http.StatusNotFound, ""},
		{"GET", "/deployments/", http.StatusNotFound, ""},
		{"GET", "/deployments/" + id + "/history/1", http.StatusNotFound, ""},
		{"GET", "/deployments/" + id + "/promote", http.StatusNotFound, ""},
		{"POST", "/clusters", http.StatusNotFound, ""},
		{"GET", "/openapi.json/", http.StatusNotFound, ""},
		{"PUT", "/deployments", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"DELETE", "/deployments", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"OPTIONS", "/deployments", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"POST", "/deployments/" + id, http.StatusMethodNotAllowed, "GET, HEAD, PATCH, DELETE"},
		{"PUT", "/deployments/" + id, http.StatusMethodNotAllowed, "GET, HEAD, PATCH, DELETE"},
		{"POST", "/deployments/" + id + "/history", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/deployments/" + id + "/history", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"PUT", "/openapi.json", http.StatusMethodNotAllowed, "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			e.noCommit(t, func() {
				// With and without a key: routing comes first.
				for _, key := range []string{"", e.alice.key} {
					res := e.do(t, req{method: c.method, path: c.path, key: key}).expect(t, c.status)
					want := "Not Found"
					if c.status == http.StatusMethodNotAllowed {
						want = "Method Not Allowed"
					}
					if d := res.detail(t); d != want {
						t.Errorf("detail %q, want %q", d, want)
					}
					if got := res.header.Get("Allow"); got != c.allow {
						t.Errorf("Allow %q, want %q", got, c.allow)
					}
				}
			})
		})
	}
}

// TestHealthz reports ok and the head the server reads, which is the
// branch's head.
func TestHealthz(t *testing.T) {
	e := newEnv(t)
	e.create(t, e.alice, dockerBody(e.prod, "web"))
	got := e.do(t, req{method: "GET", path: "/healthz"}).expect(t, http.StatusOK).object(t)
	head := strings.TrimSpace(e.git(t, "rev-parse", "main"))
	checkFields(t, got, map[string]any{"status": "ok", "head": head})
}

// TestBodyTooLarge: a body past 1 MiB answers 413 on POST and PATCH; one of
// exactly 1 MiB is read and validated.
func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	// pad makes a JSON body of exactly n bytes with a long custom_values_yaml.
	pad := func(prefix string, n int) string {
		const suffix = `"}`
		body := prefix + `"custom_values_yaml": "`
		return body + strings.Repeat("a", n-len(body)-len(suffix)) + suffix
	}
	post := `{"cluster_id": "` + e.prod.ID + `", "name": "big", "docker_image": "nginx:1.27", `
	for _, c := range []struct {
		method, path, prefix string
	}{
		{"POST", "/deployments", post},
		{"PATCH", "/deployments/" + id, "{"},
	} {
		t.Run(c.method, func(t *testing.T) {
			e.noCommit(t, func() {
				over := pad(c.prefix, api.MaxBodyBytes+1)
				res := e.do(t, req{method: c.method, path: c.path, key: e.alice.key, body: over}).
					expect(t, http.StatusRequestEntityTooLarge)
				if d := res.detail(t); d != "Request body too large: at most 1 MiB (1048576 bytes) is accepted" {
					t.Errorf("detail %q", d)
				}
				res = e.do(t, req{method: c.method, path: c.path, key: e.alice.key, body: pad(c.prefix, 8*api.MaxBodyBytes)}).
					expect(t, http.StatusRequestEntityTooLarge)

				// At the limit the body is read: custom_values_yaml is then
				// too long for the schema.
				exact := pad(c.prefix, api.MaxBodyBytes)
				if len(exact) != api.MaxBodyBytes {
					t.Fatalf("body of %d bytes", len(exact))
				}
				errs := e.do(t, req{method: c.method, path: c.path, key: e.alice.key, body: exact}).validationErrors(t)
				if len(errs) != 1 || errs[0].Type != "string_too_long" || fmtLoc(errs[0].Loc) != fmtLoc(L("body", "custom_values_yaml")) {
					t.Errorf("got %+v", errs)
				}
			})
		})
	}
}

// TestUnsupportedMediaType: a body that is not declared as JSON answers 415;
// JSON with parameters, +json types and a missing Content-Type are read.
// TestExpectContinueTooLarge: a body declared over the limit with
// `Expect: 100-continue` is answered 413 with a JSON detail, never
// `100 Continue`, and nothing of it is read.
func TestExpectContinueTooLarge(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", e.alice.key, 10<<20)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"detail":"Request body too large`) {
		t.Errorf("answer %d %s, want 413 with a JSON detail", resp.StatusCode, body)
	}
}

func TestUnsupportedMediaType(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	refused := []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "json", "application/json-seq", ";;"}
	for _, ct := range refused {
		t.Run(ct, func(t *testing.T) {
			e.noCommit(t, func() {
				for _, r := range []req{
					{method: "POST", path: "/deployments", body: dockerBody(e.prod, "other")},
					{method: "PATCH", path: "/deployments/" + id, body: map[string]any{"replicas": 2}},
				} {
					r.key, r.contentType = e.alice.key, ptr(ct)
					res := e.do(t, r).expect(t, http.StatusUnsupportedMediaType)
					if d := res.detail(t); d != "Unsupported media type '"+ct+"': send 'application/json'" {
						t.Errorf("detail %q", d)
					}
				}
			})
		})
	}
	accepted := []string{"application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json", ""}
	for i, ct := range accepted {
		name := "n" + string(rune('a'+i))
		e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, name), contentType: ptr(ct)}).
			expect(t, http.StatusCreated)
		e.do(t, req{method: "PATCH", path: "/deployments/" + id, key: e.alice.key, body: map[string]any{"replicas": i + 1}, contentType: ptr(ct)}).
			expect(t, http.StatusOK)
	}
	e.assertCommits(t, e.setupCommits+1+2*len(accepted))
}

// TestRequestIDHeader: every answer, errors included, carries X-Request-Id:
// the client's when it sent a usable one, else a new one.
func TestRequestIDHeader(t *testing.T) {
	e := newEnv(t)
	generated := regexp.MustCompile(`^[0-9a-f]{24}$`)
	cases := []struct {
		name, sent string
		status     int
		r          req
	}{
		{"ok", "abc-123", http.StatusOK, req{method: "GET", path: "/deployments", key: e.alice.key}},
		{"401", "abc-401", http.StatusUnauthorized, req{method: "GET", path: "/deployments"}},
		{"404", "abc-404", http.StatusNotFound, req{method: "GET", path: "/nope"}},
		{"422", "abc-422", http.StatusUnprocessableEntity, req{method: "POST", path: "/deployments", key: e.alice.key, body: `{}`}},
		{"none sent", "", http.StatusOK, req{method: "GET", path: "/healthz"}},
		{"too long", strings.Repeat("x", 129), http.StatusOK, req{method: "GET", path: "/healthz"}},
		{"longest kept", strings.Repeat("y", 128), http.StatusOK, req{method: "GET", path: "/healthz"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.requestID = c.sent
			res := e.do(t, c.r).expect(t, c.status)
			got := res.header.Get("X-Request-Id")
			if len(c.sent) > 0 && len(c.sent) <= 128 {
				if got != c.sent {
					t.Errorf("X-Request-Id %q, want %q", got, c.sent)
				}
			} else if !generated.MatchString(got) {
				t.Errorf("X-Request-Id %q is not a generated id", got)
			}
		})
	}
	// Two requests without one get different ids.
	a := e.do(t, req{method: "GET", path: "/healthz"}).header.Get("X-Request-Id")
	b := e.do(t, req{method: "GET", path: "/healthz"}).header.Get("X-Request-Id")
	if a == b {
		t.Errorf("two requests share the generated id %q", a)
	}
}

// TestHostileBodies: odd and hostile bodies are refused with 422, fast,
// never with a 500 (the env fails the test on any logged error), and never
// make a commit.
func TestHostileBodies(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	laughs := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n"
		prev = n
	}
	fields := []string{
		`"config": {"args": [1]}`,
		`"volumes": [null]`,
		`"environment_variables": [null]`,
		`"volumes": "x"`,
		`"name": null`,
		`"volumes": [{"path": "/a", "sizeGb": 1.5}]`,
		`"replicas": 1e400`,
		`"replicas": -1e400`,
		`"replicas": 100000000000000000000000000`,
		`"cpu_request": 1e-400`,
		`"cpu_request": "NaN"`,
		`"custom_values_yaml": "a: &x [*x]"`,
		`"custom_values_yaml": "a: *x"`,
		`"custom_values_yaml": ` + string(mustJSON(t, laughs)),
		`"config": {"storage_mount_path": "/x/../y"}`,
		`"\u0000": 1`,
		`"name": "a\u0000"`,
		`"name": "` + strings.Repeat("a", 100000) + `"`,
		`"docker_image": ""`,
		`"config": {"command": ["` + strings.Repeat("x", 5000) + `"]}`,
	}
	raw := []string{"\xff\xfe", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), `null`, `"x"`, `1`, `{"a":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5001)}
	e.noCommit(t, func() {
		for _, f := range fields {
			post := `{"cluster_id": "` + e.prod.ID + `", "name": "new", "docker_image": "nginx:1.27", ` + f + `}`
			if strings.HasPrefix(f, `"name"`) || strings.HasPrefix(f, `"docker_image"`) {
				post = `{"cluster_id": "` + e.prod.ID + `", ` + f + `}`
			}
			e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: post}).validationErrors(t)
			e.patch(t, e.alice, id, "{"+f+"}").validationErrors(t)
		}
		for _, b := range raw {
			e.do(t, req{method: "POST", path: "/deployments", key: e.alice.key, body: b}).validationErrors(t)
			e.patch(t, e.alice, id, b).validationErrors(t)
		}
	})
}

// TestWriteDetail: the error body for handlers beside the API is the
// API's own, {"detail": ...} with HTML characters kept, and DetailJSON is
// byte for byte what WriteDetail writes.
func TestWriteDetail(t *testing.T) {
	const detail = `server busy: <512> requests & "more"`
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "1")
	api.WriteDetail(rec, http.StatusServiceUnavailable, detail)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("answer %d %v", rec.Code, rec.Header())
	}
	want := `{"detail":"server busy: <512> requests & \"more\""}` + "\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got := string(api.DetailJSON(detail)); got != want {
		t.Errorf("DetailJSON %q, want %q", got, want)
	}
}
