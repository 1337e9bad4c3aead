package servercmd

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSilentConnectionsAreShed: past the cap, connections that sent
// nothing are closed, oldest first, so a client with a request is served
// at once and the open connections stay at the cap.
func TestSilentConnectionsAreShed(t *testing.T) {
	const max = 4
	limit := newConnLimit(max)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.Config.ConnState = limit.track
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	var silent []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("a request among 20 silent connections: %v", err)
	}
	resp.Body.Close()
	if n := limit.count(); n > max {
		t.Errorf("%d connections open, cap %d", n, max)
	}
	// The first silent connection was shed: reading it ends.
	silent[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest silent connection is still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the oldest silent connection was not closed")
	}
}
