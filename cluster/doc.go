// Package cluster is how the agent talks to a Kubernetes cluster: it
// connects through a kubeconfig (Connect, (*Conn).Ping) and manages Helm
// releases there with a few small methods, so the agent's own interfaces
// can stay small:
//
//	conn, err := cluster.Connect(&clusterRecord, cluster.Options{Logger: log})
//	applied, err := conn.Apply(ctx, cluster.Release{Name: "shop", Namespace: "shop", Chart: ch, Values: vals,
//		Labels:       map[string]string{"mengi.cloud/deployment-id": id},
//		ObjectLabels: map[string]string{"mengi.cloud/deployment-id": id}})
//	err = conn.Wait(ctx, applied, 5*time.Minute)    // *HealthError names what is not healthy
//	items, err := conn.Drift(ctx, "shop", "shop")   // "Deployment shop/shop: replicas 5, want 2"
//	owned, err := conn.Owned(ctx)                   // releases labelled mengi.cloud/managed=true
//	err = conn.Uninstall(ctx, "shop", "shop", time.Minute)
//
// Helm release records live in the release's own namespace (Helm's
// "secret" driver by default). Everything Apply creates is marked
// mengi.cloud/managed=true: the release record and, when Apply creates it,
// the namespace; Owned, Apply and Uninstall never touch an unmarked
// release.
//
// A release is confined to its namespace (confine.go, policy.go): Apply
// refuses, before applying anything, a chart that would create a
// cluster-scoped object, an object in another namespace or (unless
// Release.AllowPrivileged) a pod below Pod Security "baseline". Helm itself
// runs as the namespace's ServiceAccount mengi-deployer, bound to the
// ClusterRole admin there only, in a namespace labelled with its Pod
// Security level (deployer.go), so the API server refuses the same.
//
// Errors are typed: *ConfigError (kubeconfig), *UnreachableError (the
// agent's ClusterUnreachable), *ReleaseError (ApplyFailed; it may wrap an
// *UnreachableError or a *NotManagedError, or a *PolicyError, the agent's
// PolicyViolation), *HealthError (HealthCheckFailed) and *StuckError (an
// uninstall that cannot finish).
//
// Every method honours its context: Helm's actions take none, so each runs
// with a client whose requests end with the context, and runs to its end in
// the calling goroutine. A Conn holds no goroutines.
package cluster
