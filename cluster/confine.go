package cluster

import (
	"bytes"
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/postrender"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// How Apply keeps a release to its confinement (see PolicyError), before
// anything of it is applied:
//
//   - precheck renders the release first, as Helm's client-side dry run
//     does, with the cluster's version and API groups and through the same
//     post-renderer, and checks everything it would create at once: the
//     chart's crds/ files (always cluster-scoped, so a chart that has any
//     is refused), the manifest and every hook. Its *PolicyError names
//     every object at fault.
//   - The install or upgrade then checks what Helm really applies, which a
//     chart can render differently the second time (random values, lookup,
//     .Release.IsUpgrade): a post-renderer checks the manifest as rendered,
//     and the release storage refuses to record a release whose hooks fail
//     the check; Helm records a release before it runs any hook or applies
//     any object.
//   - Helm runs as the namespace's deployer (deployer.go), and the
//     namespace enforces Pod Security, so the API server refuses the same
//     objects should anything above miss one.

// precheck is the first check (see above); it applies nothing.
func (c *Conn) precheck(ctx context.Context, r Release, conf confinement, post postrender.PostRenderer) error {
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.DryRun, in.ClientOnly = true, true
	in.ReleaseName, in.Namespace, in.PostRenderer = r.Name, r.Namespace, post
	if err := c.setCapabilities(in); err != nil {
		return err
	}
	ch := copyChart(r.Chart)
	vals := copyValues(r.Values)
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		return fmt.Errorf("render for the policy check: %w", err)
	}
	var all []Violation
	for _, crd := range ch.CRDObjects() { // Helm dropped disabled subcharts from ch
		vs, err := c.check(ctx, conf, string(crd.File.Data), "crds/")
		if err != nil {
			return fmt.Errorf("check %s: %w", crd.Filename, err)
		}
		all = append(all, vs...)
	}
	vs, err := c.check(ctx, conf, rel.Manifest, "")
	if err != nil {
		return fmt.Errorf("check the manifest: %w", err)
	}
	all = append(all, vs...)
	if vs, err = c.checkHooks(ctx, conf, rel.Hooks); err != nil {
		return err
	}
	return conf.refuse(append(all, vs...))
}

// checkHooks checks the manifest of every hook (test hooks too).
func (c *Conn) checkHooks(ctx context.Context, conf confinement, hooks []*release.Hook) ([]Violation, error) {
	var all []Violation
	for _, h := range hooks {
		vs, err := c.check(ctx, conf, h.Manifest, "hook")
		if err != nil {
			return nil, fmt.Errorf("check hook %s: %w", h.Path, err)
		}
		all = append(all, vs...)
	}
	return all, nil
}

// setCapabilities gives a client-only install the cluster's version and API
// groups, as a real install reads them.
func (c *Conn) setCapabilities(in *action.Install) error {
	v, err := c.discovery.ServerVersion()
	if err != nil {
		return fmt.Errorf("server version: %w", c.unreachable(err))
	}
	apis, err := action.GetVersionSet(c.discovery)
	if err != nil {
		return fmt.Errorf("API versions: %w", c.unreachable(err))
	}
	in.KubeVersion = &chartutil.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor}
	in.APIVersions = apis
	return nil
}

// guard installs the checks of the real install or upgrade on cfg and
// returns the post-renderer to give Helm (see above).
func (c *Conn) guard(ctx context.Context, cfg *action.Configuration, conf confinement,
	post postrender.PostRenderer) postrender.PostRenderer {
	cfg.Releases.Driver = &guardedDriver{Driver: cfg.Releases.Driver, check: func(rel *release.Release) error {
		vs, err := c.checkHooks(ctx, conf, rel.Hooks)
		if err != nil {
			return err
		}
		return conf.refuse(vs)
	}}
	return &guardPostRenderer{ctx: ctx, conn: c, conf: conf, next: post}
}

// guardPostRenderer runs next, when set, then checks the manifest Helm is
// about to apply.
type guardPostRenderer struct {
	ctx  context.Context // the Apply call's
	conn *Conn
	conf confinement
	next postrender.PostRenderer
}

// Run implements postrender.PostRenderer.
func (g *guardPostRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out := in
	if g.next != nil {
		var err error
		if out, err = g.next.Run(in); err != nil {
			return nil, err
		}
	}
	vs, err := g.conn.check(g.ctx, g.conf, out.String(), "")
	if err != nil {
		return nil, fmt.Errorf("check the manifest: %w", err)
	}
	if err := g.conf.refuse(vs); err != nil {
		return nil, err
	}
	return out, nil
}

// guardedDriver is Helm's release storage, refusing to create a release
// record that check refuses.
type guardedDriver struct {
	driver.Driver
	check func(*release.Release) error
}

// Create implements driver.Driver.
func (d *guardedDriver) Create(key string, rls *release.Release) error {
	if err := d.check(rls); err != nil {
		return err
	}
	return d.Driver.Create(key, rls)
}
