package servercmd

import (
	"net"
	"net/http"
	"sync"
	"time"
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
