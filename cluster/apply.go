package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	psa "k8s.io/pod-security-admission/api"

	"github.com/mengi-cloud/gitops/objectlabels"
)

// recoveryTimeout bounds the waits of Apply's own housekeeping (objects of
// an interrupted install going away, a terminating namespace) when the
// caller's context has no earlier deadline.
const recoveryTimeout = 2 * time.Minute

// defaultHookTimeout is Helm's timeout for chart hooks when the context has
// no deadline.
const defaultHookTimeout = 5 * time.Minute

// Release is what Apply puts on a cluster: a chart with its values, as a
// Helm release Name in Namespace.
type Release struct {
	Name      string
	Namespace string
	Chart     *chart.Chart // not modified: Apply works on a copy
	Values    map[string]any
	// Labels are stored on the Helm release record (for example
	// mengi.cloud/deployment-id). Apply always adds mengi.cloud/managed=true.
	Labels map[string]string
	// ObjectLabels are added to the metadata of every object the chart
	// renders (hooks and crds/ excepted), through a Helm post-renderer, so
	// the objects of any chart are findable by label.
	ObjectLabels map[string]string
	// AllowPrivileged lets the release's pods be privileged and use the
	// host's namespaces, paths and ports (its cluster allows it); without
	// it they must meet Pod Security "baseline". See PolicyError.
	AllowPrivileged bool
}

// Applied is the result of Apply: the revision Helm stored, its manifest
// and the objects in it (hooks are not included).
type Applied struct {
	Name      string
	Namespace string
	Revision  int
	Manifest  string
	Objects   []ObjectRef
}

// Apply installs r, or upgrades it when the release exists, and returns
// without waiting for the objects to become healthy (see Wait).
//
//   - r is confined to its namespace (see PolicyError and confine.go):
//     when it would create anything else, Apply refuses it with a
//     *PolicyError naming the objects, before anything is applied.
//   - The namespace is created when missing, labelled mengi.cloud/managed=true;
//     a namespace still terminating is waited for, then created afresh. It
//     is labelled with the Pod Security level its pods must meet
//     (pod-security.kubernetes.io/enforce: baseline, or privileged with
//     r.AllowPrivileged) and given the deployer Helm runs as: the
//     ServiceAccount mengi-deployer, bound to the ClusterRole admin in the
//     namespace only (see deployer.go).
//   - An existing release without mengi.cloud/managed=true is refused
//     (*NotManagedError).
//   - A release whose last revision failed is upgraded; the upgrade's
//     three-way merge also recreates deleted objects and restores changed
//     fields, which is how drift is healed. Values are never reused from
//     the previous revision: r.Values is the whole truth.
//   - A last revision left pending by an interrupted operation (the agent
//     crashed) is recovered; Apply assumes it is the only writer of its
//     releases (one agent per cluster; calls for one release are serialised
//     within the Conn). A pending install with nothing deployed before it is
//     uninstalled and installed again; otherwise the pending revision is
//     marked failed and, when an earlier revision was deployed, the release
//     is rolled back to it (deleting what the interrupted operation added)
//     before the upgrade. Either way no second release is created.
//   - An interrupted uninstall is finished, then the release installed anew.
//
// Errors are *ReleaseError (wrapping *PolicyError, *UnreachableError when
// the cluster could not be reached, or *NotManagedError).
func (c *Conn) Apply(ctx context.Context, r Release) (*Applied, error) {
	if err := r.validate(); err != nil {
		return nil, &ReleaseError{Op: "apply", Namespace: r.Namespace, Name: r.Name, Err: err}
	}
	unlockRelease, err := c.releases.acquire(ctx, r.Namespace+"/"+r.Name, true)
	if err != nil {
		return nil, c.releaseErr("apply", r.Namespace, r.Name, err)
	}
	defer unlockRelease()
	unlockNamespace, err := c.namespaces.acquire(ctx, r.Namespace, false)
	if err != nil {
		return nil, c.releaseErr("apply", r.Namespace, r.Name, err)
	}
	defer unlockNamespace()

	begin := time.Now()
	rel, err := c.apply(ctx, r)
	if err != nil {
		return nil, c.releaseErr("apply", r.Namespace, r.Name, err)
	}
	objs, err := c.manifestObjects(ctx, rel.Manifest, rel.Namespace)
	if err != nil {
		return nil, c.releaseErr("apply", r.Namespace, r.Name, err)
	}
	c.log.InfoContext(ctx, "applied release", "release", r.Namespace+"/"+r.Name, "revision", rel.Version,
		"objects", len(objs), "took", time.Since(begin).Round(time.Millisecond))
	return &Applied{
		Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version,
		Manifest: rel.Manifest, Objects: refs(objs),
	}, nil
}

func (r *Release) validate() error {
	if err := chartutil.ValidateReleaseName(r.Name); err != nil {
		return fmt.Errorf("release name %q: %w", r.Name, err)
	}
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", r.Namespace, errs[0])
	}
	if r.Chart == nil || r.Chart.Metadata == nil {
		return errors.New("no chart")
	}
	return nil
}

// apply runs the Helm action that brings the release to r, as the
// namespace's deployer.
func (c *Conn) apply(ctx context.Context, r Release) (*release.Release, error) {
	conf := confinement{namespace: r.Namespace, allowPrivileged: r.AllowPrivileged}
	post := objectlabels.PostRenderer(r.ObjectLabels) // nil without labels
	if !c.unconfined {
		if err := c.precheck(ctx, r, conf, post); err != nil {
			return nil, err
		}
	}
	if err := c.ensureNamespace(ctx, r.Namespace, conf.podSecurityLevel()); err != nil {
		return nil, err
	}
	if err := c.ensureDeployer(ctx, r.Namespace); err != nil {
		return nil, err
	}
	cfg, err := c.deployerConfig(ctx, r.Namespace)
	if err != nil {
		return nil, err
	}
	install, replace, err := c.prepare(ctx, cfg, r)
	if err != nil {
		return nil, err
	}
	if !c.unconfined {
		post = c.guard(ctx, cfg, conf, post)
	}

	labels := map[string]string{}
	maps.Copy(labels, r.Labels)
	labels[LabelManaged] = "true"
	ch, vals := copyChart(r.Chart), copyValues(r.Values)
	if vals == nil {
		vals = map[string]any{}
	}
	if install {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.Replace = r.Name, r.Namespace, replace
		in.Labels, in.PostRenderer, in.Timeout = labels, post, hookTimeout(ctx)
		return in.Run(ch, vals)
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Labels, up.PostRenderer, up.Timeout = r.Namespace, labels, post, hookTimeout(ctx)
	up.MaxHistory = c.opts.MaxHistory
	up.ResetValues = true // Helm would reuse the old values when vals is empty
	return up.Run(r.Name, ch, vals)
}

// prepare reads the release's history and readies it for the next
// revision: it refuses a release Mengi does not manage and recovers one an
// interrupted operation left behind. It reports whether the release must be
// installed (else upgraded), and whether over an uninstalled one kept in
// history.
func (c *Conn) prepare(ctx context.Context, cfg *action.Configuration, r Release) (install, replace bool, err error) {
	hist, err := history(cfg, r.Name)
	if err != nil || len(hist) == 0 {
		return true, false, err
	}
	last := hist[len(hist)-1]
	if !isManaged(last) {
		return false, false, &NotManagedError{Namespace: r.Namespace, Name: r.Name}
	}
	switch st := last.Info.Status; {
	case st.IsPending():
		install, err = c.recoverPending(ctx, cfg, hist)
		return install, false, err
	case st == release.StatusUninstalling:
		c.log.WarnContext(ctx, "finishing an interrupted uninstall before installing", "release", r.Namespace+"/"+r.Name)
		return true, false, c.purge(ctx, cfg, last)
	case st == release.StatusUninstalled: // kept history
		return true, true, nil
	}
	return false, false, nil
}

// recoverPending repairs a release whose last revision an interrupted
// operation left pending (see Apply). It reports whether the release is
// now gone and must be installed.
func (c *Conn) recoverPending(ctx context.Context, cfg *action.Configuration, hist []*release.Release) (install bool, err error) {
	last := hist[len(hist)-1]
	was := last.Info.Status
	var deployed *release.Release
	for i := len(hist) - 2; i >= 0; i-- {
		if hist[i].Info.Status == release.StatusDeployed {
			deployed = hist[i]
			break
		}
	}
	log := c.log.With("release", last.Namespace+"/"+last.Name, "revision", last.Version, "status", was)
	if deployed == nil && was == release.StatusPendingInstall {
		log.WarnContext(ctx, "recovering an interrupted install: uninstalling it to install again")
		return true, c.purge(ctx, cfg, last)
	}
	last.SetStatus(release.StatusFailed, fmt.Sprintf("Interrupted while %s; marked failed by Mengi to recover", was))
	if err := cfg.Releases.Update(last); err != nil {
		return false, fmt.Errorf("mark interrupted revision %d failed: %w", last.Version, err)
	}
	if deployed == nil {
		log.WarnContext(ctx, "recovering an interrupted operation: marked failed, upgrading")
		return false, nil
	}
	log.WarnContext(ctx, "recovering an interrupted operation: rolling back to the last deployed revision, then upgrading",
		"rollback_to", deployed.Version)
	rb := action.NewRollback(cfg)
	rb.Version, rb.DisableHooks, rb.MaxHistory, rb.Timeout = deployed.Version, true, c.opts.MaxHistory, hookTimeout(ctx)
	if err := rb.Run(last.Name); err != nil {
		return false, fmt.Errorf("roll back interrupted revision %d to %d: %w", last.Version, deployed.Version, err)
	}
	return false, nil
}

// purge uninstalls a release without its hooks (it never finished
// installing, or was already being uninstalled) and waits, within
// recoveryTimeout, until its objects are gone, so an install can follow.
func (c *Conn) purge(ctx context.Context, cfg *action.Configuration, last *release.Release) error {
	objs, err := c.manifestObjects(ctx, last.Manifest, last.Namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.DisableHooks, un.Timeout, un.DeletionPropagation = true, hookTimeout(ctx), "background"
	if _, err := un.Run(last.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall interrupted release: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, recoveryTimeout)
	defer cancel()
	return c.waitGone(ctx, objs)
}

// ensureNamespace creates the namespace, labelled as Mengi's, unless it
// exists (a namespace being deleted is waited for first), and sets its Pod
// Security enforce level.
func (c *Conn) ensureNamespace(ctx context.Context, name string, level psa.Level) error {
	api := c.clientset.CoreV1().Namespaces()
	for {
		ns, err := api.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
				Labels: map[string]string{LabelManaged: "true", psa.EnforceLevelLabel: string(level)}}}
			_, err = api.Create(ctx, ns, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("create namespace %s: %w", name, err)
			}
			c.log.InfoContext(ctx, "created namespace", "namespace", name, "pod_security", level)
			return nil
		case err != nil:
			return fmt.Errorf("get namespace %s: %w", name, err)
		case ns.DeletionTimestamp != nil:
			c.log.InfoContext(ctx, "waiting for the terminating namespace to go before recreating it", "namespace", name)
			if err := c.waitNamespaceGone(ctx, name, recoveryTimeout); err != nil {
				return err
			}
		default:
			return c.labelPodSecurity(ctx, ns, level)
		}
	}
}

// history returns the release's revisions, oldest first; none when it does
// not exist.
func history(cfg *action.Configuration, name string) ([]*release.Release, error) {
	hist, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release history: %w", err)
	}
	releaseutil.SortByRevision(hist)
	return hist, nil
}

// isManaged reports whether a release record carries mengi.cloud/managed=true.
func isManaged(rel *release.Release) bool { return rel.Labels[LabelManaged] == "true" }

// hookTimeout is the time Helm may spend on chart hooks: what is left of
// ctx, or defaultHookTimeout.
func hookTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Second)
	}
	return defaultHookTimeout
}

// copyChart copies what Helm changes in a chart while installing it (the
// dependency list, their metadata and the values), so a caller may reuse a
// chart it caches. Templates and files are shared: Helm only reads them.
func copyChart(ch *chart.Chart) *chart.Chart {
	cp := *ch
	if ch.Metadata != nil {
		md := *ch.Metadata
		if ch.Metadata.Dependencies != nil { // Helm tells nil from empty
			md.Dependencies = make([]*chart.Dependency, len(ch.Metadata.Dependencies))
		}
		for i, d := range ch.Metadata.Dependencies {
			if d != nil {
				dep := *d
				md.Dependencies[i] = &dep
			}
		}
		cp.Metadata = &md
	}
	cp.Values = copyValues(ch.Values)
	deps := make([]*chart.Chart, 0, len(ch.Dependencies()))
	for _, d := range ch.Dependencies() {
		deps = append(deps, copyChart(d))
	}
	cp.SetDependencies(deps...)
	return &cp
}

// copyValues deep-copies a values tree (maps and slices); nil stays nil.
func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return nil
	}
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = copyValue(x)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyValues(x)
	case chartutil.Values:
		return chartutil.Values(copyValues(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	default:
		return v
	}
}
