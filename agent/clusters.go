package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// Cluster statuses written to a cluster record and shown in responses as
// cluster_status.
const (
	ClusterConnected   = "connected"
	ClusterUnreachable = "unreachable"
)

// clusters keeps one connection per cluster, checks reachability before
// work, and records it in the cluster's file in the registry.
type clusters struct {
	reg     Registry
	connect Connector
	author  gitstore.Signature
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	state map[string]*clusterState
}

type clusterState struct {
	conn     Conn
	target   string // the kubeconfig and context conn was made for
	ok       bool   // last check succeeded
	checked  time.Time
	failures int
}

func newClusters(reg Registry, connect Connector, author gitstore.Signature, log *slog.Logger, now func() time.Time) *clusters {
	return &clusters{reg: reg, connect: connect, author: author, log: log, now: now, state: map[string]*clusterState{}}
}

// recheckAfter is how long a successful reachability check is trusted.
const recheckAfter = 10 * time.Second

// ready returns a connection to the cluster once it answers; otherwise the
// cluster is recorded as unreachable and the error returned.
func (c *clusters) ready(ctx context.Context, cl *schema.Cluster) (Conn, error) {
	c.mu.Lock()
	st := c.state[cl.ID]
	if st == nil {
		st = &clusterState{}
		c.state[cl.ID] = st
	}
	if st.ok && time.Since(st.checked) < recheckAfter {
		conn := st.conn
		c.mu.Unlock()
		return conn, nil
	}
	// Connecting reads the kubeconfig and contacts nothing: done under the
	// lock, so workers share one connection (and its discovery cache).
	conn := st.conn
	var err error
	if conn == nil {
		if conn, err = c.connect(cl); err == nil {
			st.conn, st.target = conn, target(cl)
		}
	}
	c.mu.Unlock()

	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = conn.Ping(pctx)
		cancel()
	}
	c.mu.Lock()
	st.checked, st.ok = time.Now(), err == nil
	if err != nil {
		st.failures++
	} else {
		st.failures = 0
	}
	c.mu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		c.record(ctx, cl.ID, ClusterUnreachable, err.Error())
		return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	c.record(ctx, cl.ID, ClusterConnected, "")
	return conn, nil
}

// backoff is how long deployments of an unreachable cluster wait before
// the next try: 2 s, doubling, at most a minute.
func (c *clusters) backoff(id string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 1
	if st := c.state[id]; st != nil {
		n = st.failures
	}
	return min(time.Duration(1<<min(n, 6))*time.Second, time.Minute)
}

// target is what a connection to the cluster is made from.
func target(cl *schema.Cluster) string { return cl.Kubeconfig + "\x00" + cl.Context }

// refresh drops the connections of clusters whose record changed its
// kubeconfig or context, or is gone, so the next work connects anew.
func (c *clusters) refresh() {
	now := map[string]string{}
	for _, cl := range c.reg.Clusters() {
		now[cl.ID] = target(cl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range c.state {
		if t, ok := now[id]; !ok || t != st.target {
			delete(c.state, id)
		}
	}
}

// record writes the cluster's reachability into its record when it
// changed.
func (c *clusters) record(ctx context.Context, id, status, msg string) {
	now := c.now()
	err := c.reg.EditClusterStatus(context.WithoutCancel(ctx), id, c.author, func(st *schema.ClusterStatus) (string, string) {
		if st.ClusterStatus == status && st.ClusterError == msg {
			return "", ""
		}
		st.ClusterStatus, st.ClusterError, st.CheckedAt = status, msg, &now
		return status, msg
	})
	if err != nil {
		c.log.Warn("recording cluster status failed", "cluster", id, "err", err)
	}
}

// reachable returns the connections of every registered cluster that
// answers now.
func (c *clusters) reachable(ctx context.Context) map[string]Conn {
	out := map[string]Conn{}
	for _, cl := range c.reg.Clusters() {
		if conn, err := c.ready(ctx, cl); err == nil {
			out[cl.ID] = conn
		}
	}
	return out
}
