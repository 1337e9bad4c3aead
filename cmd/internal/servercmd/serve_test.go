package servercmd

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs Serve with handler on a free port until the test ends and
// returns the address.
func serve(t *testing.T, handler http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "test", "127.0.0.1:0", handler, 5*time.Second, slog.New(slog.DiscardHandler), func(a string) { addr <- a }, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return ""
}

// rawResponse is an answer read off a raw connection.
type rawResponse struct {
	status      int
	contentType string
	body        []byte
}

// detail is the response's {"detail": ...}, failing the test unless the
// body is that JSON object.
func (r rawResponse) detail(t *testing.T) string {
	t.Helper()
	if r.contentType != "application/json" {
		t.Errorf("%d: Content-Type %q, want application/json (body %q)", r.status, r.contentType, r.body)
	}
	var v struct {
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.Detail == nil {
		t.Errorf("%d: body %q is not {\"detail\": ...}: %v", r.status, r.body, err)
		return ""
	}
	return *v.Detail
}

// rawRequest sends request as it is on a new connection to addr (from
// a goroutine, so a request larger than the socket buffers is read while
// it is sent) and reads the answer.
func rawRequest(t *testing.T, addr, request string) rawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.WriteString(conn, request) // fails once the server hangs up on a large request
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of the answer to %.60q: %v", request, err)
	}
	if cl := resp.ContentLength; cl >= 0 && int(cl) != len(body) {
		t.Errorf("Content-Length %d, body of %d bytes", cl, len(body))
	}
	return rawResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}
}

// TestCannedErrorsAreJSON: the requests net/http refuses itself, before
// any handler, get a JSON {"detail": ...} instead of its plain text: 431
// for 2 MB of headers, 400 for malformed ones, 501 and 505; what handlers
// write is untouched, plain-text 400 included.
func TestCannedErrorsAreJSON(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain" {
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
			return
		}
		w.Write([]byte("ok"))
	}))
	cases := []struct {
		name, request string
		status        int
		detail        string
	}{
		{"header of 2 MB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "Request headers too large: at most 64 KiB (65536 bytes) of request line and headers is accepted"},
		{"many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 30000) + "\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "Request headers too large: at most 64 KiB (65536 bytes) of request line and headers is accepted"},
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"no version", "GET /\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest, "Bad Request: missing required Host header"},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed Host header"},
		{"bad header name", "GET / HTTP/1.1\r\nHost: x\r\nBad(Name): x\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"bad header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
			http.StatusNotImplemented, "Not Implemented: unsupported Transfer-Encoding; send the body with Content-Length or 'Transfer-Encoding: chunked'"},
		{"HTTP/2.0 on HTTP/1", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported, "HTTP Version Not Supported: unsupported protocol version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rawRequest(t, addr, c.request)
			if r.status != c.status {
				t.Errorf("status %d, want %d (body %q)", r.status, c.status, r.body)
			}
			if d := r.detail(t); d != c.detail {
				t.Errorf("detail %q, want %q", d, c.detail)
			}
		})
	}
	t.Run("handler answers", func(t *testing.T) {
		if r := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != http.StatusOK || string(r.body) != "ok" {
			t.Errorf("GET /: %d %q", r.status, r.body)
		}
		r := rawRequest(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if r.status != http.StatusBadRequest || r.contentType != "text/plain; charset=utf-8" || string(r.body) != "400 Bad Request\n" {
			t.Errorf("a handler's plain-text 400 was changed: %d %q %q", r.status, r.contentType, r.body)
		}
	})
}

// TestCannedErrorRewrite: exactly net/http's plain-text errors are
// rewritten; writes that only look like them pass as they are.
func TestCannedErrorRewrite(t *testing.T) {
	c := &jsonErrorConn{tooLarge: "too large"}
	for _, w := range []struct{ write, status, detail string }{
		{"HTTP/1.1 431 Request Header Fields Too Large" + errorHeaders + "431 Request Header Fields Too Large", "431 Request Header Fields Too Large", "too large"},
		{"HTTP/1.1 400 Bad Request" + errorHeaders + "400 Bad Request", "400 Bad Request", "Bad Request: malformed request line or headers"},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + errorHeaders + "400 Bad Request: missing required Host header",
			"400 Bad Request: missing required Host header", "Bad Request: missing required Host header"},
		{"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" + errorHeaders + "505 HTTP Version Not Supported: unsupported protocol version",
			"505 HTTP Version Not Supported: unsupported protocol version", "HTTP Version Not Supported: unsupported protocol version"},
		{"HTTP/1.1 501 Not Implemented" + errorHeaders + "Unsupported transfer encoding", "501 Not Implemented",
			"Not Implemented: unsupported Transfer-Encoding; send the body with Content-Length or 'Transfer-Encoding: chunked'"},
	} {
		got := c.rewrite([]byte(w.write))
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(got))), nil)
		if err != nil {
			t.Errorf("%.40q: rewritten to %q: %v", w.write, got, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		r := rawResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}
		if resp.Status != w.status || r.detail(t) != w.detail || !resp.Close || resp.ContentLength != int64(len(body)) {
			t.Errorf("%.40q: rewritten to %q", w.write, got)
		}
	}
	for _, w := range []string{
		"HTTP/1.1 200 OK" + errorHeaders + "200 OK",
		"HTTP/1.1 404 Not Found" + errorHeaders + "something else",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n400 Bad Request",
		"HTTP/1.1 400 Bad Request\r\nX-A: b" + errorHeaders + "400 Bad Request\r\nX-A: b",
		"HTTP/1.1 501 Not Implemented" + errorHeaders + "Unsupported transfer encoding, or not",
		"HTTP/1.0 400 Bad Request" + errorHeaders + "400 Bad Request",
		"HTTP/1.1 400 Bad Request",
		"HTTP/1.1 4",
		"",
	} {
		if got := c.rewrite([]byte(w)); got != nil {
			t.Errorf("%q rewritten to %q", w, got)
		}
	}
}
