package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// snapshot is what one reconcile reads from the store, consistently, and
// what the registry says of it.
type snapshot struct {
	head    plumbing.Hash
	rec     *gitstore.Record
	d       *schema.Deployment // rec's deployment, unpacked
	cluster *schema.Cluster
	// admitErr is why the registry does not admit d (registry.Admit).
	admitErr error
}

func (a *Agent) read(path string) snapshot {
	var s snapshot
	a.store.Read(func(v *gitstore.View) {
		if s.rec = v.Record(path); s.rec != nil {
			s.d = s.rec.Deployment()
		}
	})
	s.head = a.store.Head()
	if s.d != nil {
		s.cluster, s.admitErr = a.reg.Admit(s.d)
	}
	return s
}

// final phases need no work while the spec they describe is current.
func final(p schema.Phase) bool {
	switch p {
	case schema.PhaseRunning, schema.PhaseStopped, schema.PhaseFailed, schema.PhaseError:
		return true
	}
	return false
}

// reconcile brings one deployment file's cluster state in line with it.
func (a *Agent) reconcile(ctx context.Context, path string, force bool) {
	s := a.read(path)
	rec := s.rec
	switch {
	case rec == nil:
		// The file is gone (deleted by a commit, or renamed): prune.
		a.prune(ctx)
		return
	case s.d == nil:
		a.reportInvalidFile(ctx, path, rec, nil)
		return
	case rec.Err() != nil:
		a.reportInvalidFile(ctx, path, rec, s.d)
		return
	}
	d := s.d
	log := a.log.With("deployment", subjectPath(s.cluster, d), "commit", short(s.head))
	if s.cluster == nil {
		a.setStatus(ctx, path, d, schema.Status{Phase: schema.PhaseError, Reason: ReasonUnknownCluster,
			ErrorMessage: fmt.Sprintf("spec.cluster_id: cluster %s is not registered", d.Spec.ClusterID)}, log)
		return
	}
	if d.Metadata.DeletionRequestedAt != nil {
		// Removing what was applied needs no access: an owner who lost it
		// may still delete.
		a.remove(ctx, path, d, s.cluster, log)
		return
	}
	var denied *registry.AccessError
	if errors.As(s.admitErr, &denied) {
		// No spec digest: once access is granted, the spec is applied.
		log.Warn("not admitted; nothing applied", "err", denied)
		a.setStatus(ctx, path, d, schema.Status{Phase: schema.PhaseError, Reason: ReasonAccessDenied, ErrorMessage: denied.Error()}, log)
		return
	}
	digest := d.Spec.Digest()
	if st := d.Status; !force && st != nil && st.SpecDigest == digest && final(st.Phase) {
		return
	}
	conn, err := a.clusters.ready(ctx, s.cluster)
	if err != nil {
		log.Warn("cluster unreachable; deployment waits", "err", err)
		a.queue.addAfter(path, a.clusters.backoff(s.cluster.ID), force)
		return
	}

	log.Info("applying", "step", "render")
	start := time.Now()
	a.setStatus(ctx, path, d, schema.Status{Phase: schema.PhaseProvisioning, SpecDigest: digest, AppliedCommit: s.head.String()}, log)
	rel, err := a.render.Render(ctx, d, s.cluster)
	if err != nil {
		st := schema.Status{Phase: schema.PhaseError, Reason: ReasonRenderFailed, ErrorMessage: err.Error(), SpecDigest: digest}
		var re *render.Error
		if errors.As(err, &re) {
			st.Reason = re.Reason
			if re.Temporary {
				st.Phase = schema.PhaseFailed
				a.queue.addAfter(path, 30*time.Second, true)
			}
		}
		log.Warn("render failed", "reason", st.Reason, "err", err)
		a.setStatus(ctx, path, d, st, log)
		return
	}
	log.Info("applying", "step", "apply", "release", rel.Namespace+"/"+rel.Name, "chart", rel.ChartRef)
	applied, err := conn.Apply(ctx, cluster.Release{
		Name: rel.Name, Namespace: rel.Namespace, Chart: rel.Chart, Values: rel.Values,
		Labels:          map[string]string{LabelManaged: "true", LabelDeploymentID: d.Metadata.ID, LabelClusterID: s.cluster.ID},
		ObjectLabels:    map[string]string{LabelDeploymentID: d.Metadata.ID},
		AllowPrivileged: s.cluster.AllowPrivileged,
	})
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down; the next start re-checks everything
		}
		st := schema.Status{Phase: schema.PhaseFailed, Reason: ReasonApplyFailed, ErrorMessage: err.Error(),
			SpecDigest: digest, ValuesYAML: rel.ValuesYAML, AppliedCommit: s.head.String()}
		var pe *cluster.PolicyError
		if errors.As(err, &pe) { // nothing was applied; not retried until the spec changes
			st.Phase, st.Reason, st.ErrorMessage = schema.PhaseError, ReasonPolicyViolation, pe.Error()
		}
		log.Warn("apply failed", "reason", st.Reason, "err", err)
		a.setStatus(ctx, path, d, st, log)
		return
	}
	log.Info("applying", "step", "wait", "revision", applied.Revision)
	st := schema.Status{Phase: schema.PhaseRunning, EndpointURL: rel.EndpointURL, ValuesYAML: rel.ValuesYAML,
		SpecDigest: digest, AppliedCommit: s.head.String()}
	if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 {
		st.Phase = schema.PhaseStopped
	}
	if err := conn.Wait(ctx, applied, a.opts.HealthTimeout); err != nil {
		if ctx.Err() != nil {
			return
		}
		st.Phase, st.Reason, st.ErrorMessage = schema.PhaseFailed, ReasonHealthCheckFailed, err.Error()
		log.Warn("not healthy", "err", err)
	}
	now := a.now()
	st.AppliedAt = &now
	if note := a.takeDrift(path); note != "" {
		st.Drift, st.DriftCorrectedAt = note, &now
	} else if prev := d.Status; prev != nil && prev.SpecDigest == digest {
		st.Drift, st.DriftCorrectedAt = prev.Drift, prev.DriftCorrectedAt // keep the last report
	}
	a.setStatus(ctx, path, d, st, log)
	log.Info("applied", "phase", st.Phase, "took", time.Since(start).Round(time.Millisecond))
}

// remove uninstalls a deployment whose deletion was requested, then
// deletes its file.
func (a *Agent) remove(ctx context.Context, path string, d *schema.Deployment, c *schema.Cluster, log *slog.Logger) {
	conn, err := a.clusters.ready(ctx, c)
	if err != nil {
		a.queue.addAfter(path, a.clusters.backoff(c.ID), false)
		return
	}
	log.Info("deleting", "step", "uninstall")
	if err := conn.Uninstall(ctx, d.Spec.Name, render.Namespace(d.Spec.Name), a.opts.HealthTimeout); err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn("uninstall failed; will retry", "err", err)
		a.setStatus(ctx, path, d, schema.Status{Phase: schema.PhaseFailed, Reason: ReasonApplyFailed,
			ErrorMessage: "deletion: " + err.Error()}, log)
		a.queue.addAfter(path, 10*time.Second, false)
		return
	}
	err = a.status.write(ctx, &statusUpdate{path: path, id: d.Metadata.ID, remove: true})
	if err != nil {
		log.Warn("removing the file failed", "err", err)
		return
	}
	log.Info("deleted")
}

// reportInvalidFile writes status `error` into a file that does not pass
// validation (last is its last valid version; without one the file cannot
// be tied to a deployment); nothing on the cluster is touched.
func (a *Agent) reportInvalidFile(ctx context.Context, path string, rec *gitstore.Record, last *schema.Deployment) {
	if last == nil {
		// Without a valid metadata.id the file cannot be tied to a
		// deployment; the error is logged (and `mengi validate` shows it).
		a.log.Warn("invalid deployment file", "path", path, "err", rec.Err())
		return
	}
	a.log.Warn("invalid deployment file; nothing applied", "path", path, "err", rec.Err())
	a.setStatus(ctx, path, last, schema.Status{Phase: schema.PhaseError, Reason: ReasonInvalidSpec,
		ErrorMessage: rec.Err().Error()}, a.log)
}

// setStatus writes st for the deployment's current spec.
func (a *Agent) setStatus(ctx context.Context, path string, d *schema.Deployment, st schema.Status, log *slog.Logger) {
	now := a.now()
	st.UpdatedAt = &now
	digest := st.SpecDigest
	if err := a.status.write(ctx, &statusUpdate{path: path, id: d.Metadata.ID, digest: digest, status: st}); err != nil && ctx.Err() == nil {
		log.Warn("writing status failed", "err", err)
	}
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:10]
}

func subjectPath(c *schema.Cluster, d *schema.Deployment) string {
	if c != nil {
		return c.Name + "/" + d.Spec.Name
	}
	return d.Spec.ClusterID + "/" + d.Spec.Name
}
