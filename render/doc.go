// Package render turns a deployment (and its cluster) into a Helm release:
// the chart, the values document that becomes the deployment's values_yaml,
// the release name and namespace, and the endpoint URL.
//
// Docker deployments use the chart built into the binary (chart/, embedded):
// every decision about the deployment (workload kind, probes, ports,
// volumes, Ingress) is made in Go and written as an explicit value, so the
// values document says exactly what the chart will make. Helm deployments
// use the user's chart, fetched from an HTTP(S) chart repository or an OCI
// registry, verified against its digest and cached by digest; their values
// are custom_values_yaml plus global.mengi.deploymentId.
//
//	r, err := render.New(render.Options{CacheDir: dir, Logger: log})
//	rel, err := r.Render(ctx, deployment, cluster) // *render.Error on failure
//	// the agent: Helm install/upgrade of rel.Chart with rel.Values and
//	// rel.PostRenderer, release rel.Name in namespace rel.Namespace
//	text, err := render.Manifests(ctx, rel, "v1.37.2") // what `mengi render --manifests` prints
//
// README.md documents the built-in chart's values, what each deployment
// field becomes on the cluster, and how charts are fetched.
package render
