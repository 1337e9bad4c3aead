package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// ErrReleaseNotFound is wrapped by the errors of Drift (and of the other
// methods that need an existing release) when the release has no revision.
var ErrReleaseNotFound = errors.New("release not found")

// ConfigError reports a kubeconfig that could not be loaded or has no usable
// context.
type ConfigError struct {
	Cluster    string // the cluster's name
	Kubeconfig string // the file; empty for the default loading rules
	Context    string
	Err        error
}

// Error implements error.
func (e *ConfigError) Error() string {
	src := e.Kubeconfig
	if src == "" {
		src = "default kubeconfig ($KUBECONFIG, ~/.kube/config or in-cluster)"
	}
	if e.Context != "" {
		src += fmt.Sprintf(", context %q", e.Context)
	}
	return fmt.Sprintf("cluster %s: load %s: %v", e.Cluster, src, e.Err)
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// UnreachableError reports that a cluster's API server could not be reached
// or did not answer that it is ready. The agent maps it to the reconcile
// reason ClusterUnreachable.
type UnreachableError struct {
	Cluster string // the cluster's name
	Host    string // the API server URL
	Err     error  // the cause: a dial error, a timeout, an HTTP status
}

// Error implements error.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster %s (%s) unreachable: %v", e.Cluster, e.Host, e.Err)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// ReleaseError reports a failed operation on a Helm release; Err is the
// cause (Helm's or the API server's message, or an *UnreachableError).
type ReleaseError struct {
	Op        string // "apply", "uninstall", "drift", "list"
	Namespace string
	Name      string
	Err       error
}

// Error implements error.
func (e *ReleaseError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s releases: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s release %s/%s: %v", e.Op, e.Namespace, e.Name, e.Err)
}

// Unwrap returns the cause.
func (e *ReleaseError) Unwrap() error { return e.Err }

// NotManagedError reports a Helm release that exists but does not carry the
// label mengi.cloud/managed=true: Apply and Uninstall refuse to touch it.
type NotManagedError struct {
	Namespace string
	Name      string
}

// Error implements error.
func (e *NotManagedError) Error() string {
	return fmt.Sprintf("release %s/%s exists but is not managed by Mengi (no label %s=true); refusing to change it",
		e.Namespace, e.Name, LabelManaged)
}

// HealthError is returned by Wait when an object of the release did not
// become healthy in time. Object is the first unhealthy object in manifest
// order, Reason its state ("1 of 3 replicas available", "Pending", "not
// found"), Detail what the cluster says about why, when known (a pod's
// scheduling failure, the PVC's last warning event).
type HealthError struct {
	Object ObjectRef
	Reason string
	Detail string
	// Err is context.DeadlineExceeded when the timeout passed, or the
	// context's error when the caller's context ended first.
	Err error

	unread bool // the object could not be read: no finding about its health
}

// Error implements error, e.g. "Deployment shop/shop: 1 of 3 replicas
// available".
func (e *HealthError) Error() string {
	s := e.Object.String() + ": " + e.Reason
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns Err.
func (e *HealthError) Unwrap() error { return e.Err }

// StuckError is returned by Uninstall when an object (or the namespace) is
// still present when the timeout passes, typically held by a finalizer.
type StuckError struct {
	Object ObjectRef
	Reason string // e.g. "terminating, finalizers example.com/block"
	// Err is context.DeadlineExceeded when the timeout passed, or the
	// context's error when the caller's context ended first.
	Err error
}

// Error implements error.
func (e *StuckError) Error() string {
	return fmt.Sprintf("%s: still present: %s", e.Object, e.Reason)
}

// Unwrap returns Err.
func (e *StuckError) Unwrap() error { return e.Err }

// unreachable wraps err as an *UnreachableError when it is a connection
// problem (refused, reset, timed out, DNS, TLS handshake), so callers can
// tell an unreachable cluster from a rejected request. Other errors,
// context cancellation included, come back unchanged.
func (c *Conn) unreachable(err error) error {
	if err == nil || !isConnError(err) {
		return err
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return err
	}
	return &UnreachableError{Cluster: c.name, Host: c.host, Err: err}
}

// isConnError reports whether err means the API server could not be talked
// to at all, as opposed to an answer from it.
func isConnError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's budget ran out, not the cluster
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		// The server answered; only its "could not reach etcd"-style
		// timeouts count as unreachable.
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)
	}
	var op *net.OpError
	var dns *net.DNSError
	var ue *url.Error
	switch {
	case errors.As(err, &op), errors.As(err, &dns):
		return true
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err):
		return true
	case errors.As(err, &ue):
		return ue.Timeout() || strings.Contains(ue.Err.Error(), "tls:") || strings.Contains(ue.Err.Error(), "x509:")
	}
	// Helm flattens some causes into strings.
	msg := err.Error()
	return strings.Contains(msg, "Kubernetes cluster unreachable") ||
		strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "no such host") ||
		strings.Contains(msg, "i/o timeout")
}

// releaseErr wraps a failed release operation, marking connection problems
// as *UnreachableError inside the *ReleaseError.
func (c *Conn) releaseErr(op, namespace, name string, err error) error {
	if err == nil {
		return nil
	}
	return &ReleaseError{Op: op, Namespace: namespace, Name: name, Err: c.unreachable(err)}
}
