package servercmd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mengi-cloud/gitops/api"
)

// MaxConnections bounds the connections a server keeps open. Past it, the
// connection that has been waiting longest without a request in progress
// (a new one that sent nothing yet, or an idle keep-alive one) is closed
// to make room: a crowd of silent connections cannot starve the clients
// that send requests, and the process never runs out of file descriptors.
const MaxConnections = 4096

// connLimit tracks a server's connections through http.Server.ConnState.
type connLimit struct {
	max   int
	mu    sync.Mutex
	conns map[net.Conn]*connInfo
	open  int // entries not shed
}

type connInfo struct {
	waiting bool      // no request in progress
	since   time.Time // when it started waiting
	shed    bool      // closed to make room; its StateClosed is pending
}

func newConnLimit(max int) *connLimit {
	return &connLimit{max: max, conns: map[net.Conn]*connInfo{}}
}

// track is the server's ConnState hook.
func (l *connLimit) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	var shed net.Conn
	info := l.conns[c]
	switch state {
	case http.StateNew:
		l.conns[c] = &connInfo{waiting: true, since: time.Now()}
		l.open++
		if l.open > l.max {
			shed = l.shedOne()
		}
	case http.StateIdle:
		if info != nil {
			info.waiting, info.since = true, time.Now()
		}
	case http.StateActive:
		if info != nil {
			info.waiting = false
		}
	case http.StateHijacked, http.StateClosed:
		if info != nil {
			if !info.shed {
				l.open--
			}
			delete(l.conns, c)
		}
	}
	l.mu.Unlock()
	if shed != nil {
		shed.Close()
	}
}

// shedOne marks the connection waiting longest as shed and returns it
// (nil when every connection has a request in progress).
func (l *connLimit) shedOne() net.Conn {
	var oldest net.Conn
	var since time.Time
	for c, info := range l.conns {
		if info.waiting && !info.shed && (oldest == nil || info.since.Before(since)) {
			oldest, since = c, info.since
		}
	}
	if oldest != nil {
		l.conns[oldest].shed = true
		l.open--
	}
	return oldest
}

// count is how many connections are open, shed ones left out.
func (l *connLimit) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// MaxHeaderBytes bounds a request's line and headers (net/http reads 4
// KiB more before it gives up); past it the answer is 431. 64 KiB is
// twice what nginx accepts by default and far more than git or a browser
// sends; with MaxConnections open at once, header buffers stay under
// 300 MiB (net/http's default, 1 MiB, allowed 4 GiB).
const MaxHeaderBytes = 64 << 10

// jsonErrorListener hands out connections that answer in JSON what
// net/http answers in plain text before any handler runs.
type jsonErrorListener struct {
	net.Listener
	tooLarge string // the detail of a 431
}

func newJSONErrorListener(ln net.Listener, maxHeaderBytes int) *jsonErrorListener {
	return &jsonErrorListener{Listener: ln, tooLarge: "Request headers too large: at most " + sizeText(maxHeaderBytes) +
		" of request line and headers is accepted"}
}

func (l *jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c, tooLarge: l.tooLarge}, nil
}

// jsonErrorConn rewrites the answers net/http writes itself, straight to
// the connection, when it cannot read a request (server.go, conn.serve):
// 431 for headers over MaxHeaderBytes, 400 for a malformed request, 501
// for a transfer coding it does not know, 505 for an HTTP version it does
// not speak. Each is one Write of a status line, errorHeaders and a
// plain-text body; the rewrite keeps the status line and answers
// {"detail": ...} as application/json. Any other write passes untouched.
type jsonErrorConn struct {
	net.Conn
	tooLarge string
}

// errorHeaders are the headers of net/http's plain-text errors.
const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorConn) Write(b []byte) (int, error) {
	if answer := c.rewrite(b); answer != nil {
		if _, err := c.Conn.Write(answer); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// rewrite returns the JSON answer replacing b, nil when b is not one of
// net/http's plain-text errors.
func (c *jsonErrorConn) rewrite(b []byte) []byte {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || (rest[0] != '4' && rest[0] != '5') || rest[3] != ' ' {
		return nil
	}
	status, body, ok := bytes.Cut(rest, []byte(errorHeaders))
	if !ok || bytes.ContainsAny(status, "\r\n") {
		return nil
	}
	code, err := strconv.Atoi(string(status[:3]))
	if err != nil {
		return nil
	}
	var detail string
	switch {
	case code == http.StatusNotImplemented && string(body) == "Unsupported transfer encoding":
		detail = "Not Implemented: unsupported Transfer-Encoding; send the body with Content-Length or 'Transfer-Encoding: chunked'"
	case !bytes.Equal(body, status):
		// net/http's errors repeat the status line as the body.
		return nil
	case code == http.StatusRequestHeaderFieldsTooLarge:
		detail = c.tooLarge
	case string(status) == "400 Bad Request":
		detail = "Bad Request: malformed request line or headers"
	default:
		// "400 Bad Request: missing required Host header", "505 HTTP
		// Version Not Supported: unsupported protocol version": the status
		// and why.
		detail = string(status[4:])
	}
	j := api.DetailJSON(detail)
	return fmt.Appendf(nil, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(j), j)
}

// CloseWrite lets net/http half-close the connection after a 431, as it
// does on a bare TCP connection, so a client still sending its headers
// can read the answer before the connection is reset.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's own ReadFrom (sendfile, splice) for
// response bodies copied into it.
func (c *jsonErrorConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// sizeText is n bytes in MiB or KiB when it is a whole number of them.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n)
	}
	return fmt.Sprintf("%d bytes", n)
}
