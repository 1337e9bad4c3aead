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
// work, and records it in the cluster's file.
type clusters struct {
	store   *gitstore.Store
	connect Connector
	author  gitstore.Signature
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	state map[string]*clusterState
}

type clusterState struct {
	conn     Conn
	ok       bool // last check succeeded
	checked  time.Time
	failures int
}

func newClusters(store *gitstore.Store, connect Connector, author gitstore.Signature, log *slog.Logger, now func() time.Time) *clusters {
	return &clusters{store: store, connect: connect, author: author, log: log, now: now, state: map[string]*clusterState{}}
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
			st.conn = conn
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

// forget drops a cluster's connection (its record changed: a new
// kubeconfig or context).
func (c *clusters) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.state, id)
}

// record writes the cluster's reachability into its file when it changed.
func (c *clusters) record(ctx context.Context, id, status, msg string) {
	now := c.now()
	_, err := c.store.Apply(context.WithoutCancel(ctx), func(v *gitstore.View) (*gitstore.Commit, error) {
		cl := v.Cluster(id)
		if cl == nil {
			return nil, nil
		}
		if cs := cl.Status; cs != nil && cs.ClusterStatus == status && cs.ClusterError == msg {
			return nil, nil
		}
		next := *cl
		next.Status = &schema.ClusterStatus{ClusterStatus: status, ClusterError: msg, CheckedAt: &now}
		content, err := schema.EncodeRecord(&next)
		if err != nil {
			return nil, err
		}
		body := ""
		if msg != "" {
			body = msg
		}
		return &gitstore.Commit{
			Author:  c.author,
			Message: gitstore.Message("cluster "+cl.Name+": "+status, body, gitstore.Trailer{Key: "Cluster-Id", Value: id}),
			Changes: []gitstore.Change{{Path: gitstore.ClusterPath(id), Content: content, Value: &next}},
		}, nil
	})
	if err != nil {
		c.log.Warn("recording cluster status failed", "cluster", id, "err", err)
	}
}

// reachable returns the connections of every registered cluster that
// answers now.
func (c *clusters) reachable(ctx context.Context) map[string]Conn {
	var all []*schema.Cluster
	c.store.Read(func(v *gitstore.View) {
		v.Each(func(r *gitstore.Record) {
			if r.Cluster() != nil {
				all = append(all, r.Cluster())
			}
		})
	})
	out := map[string]Conn{}
	for _, cl := range all {
		if conn, err := c.ready(ctx, cl); err == nil {
			out[cl.ID] = conn
		}
	}
	return out
}
