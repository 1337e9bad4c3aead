// Package fetchguard is the one way Mengi reaches out to hosts that users
// name: chart repositories and OCI registries (helm_repo_url), and every
// later fetcher. A deployment's author chooses the URL, so without a guard
// the agent would fetch from wherever they point it: the cloud's metadata
// service (169.254.169.254), the cluster's API server, a database on the
// private network. The guard therefore:
//
//   - refuses connections to addresses that are not public: loopback,
//     link-local (cloud metadata included), private and shared (CGNAT)
//     ranges, unspecified, multicast, broadcast and reserved addresses, in
//     IPv4, IPv6 and the IPv6 forms that embed an IPv4 address. The check
//     runs in net.Dialer.Control, on the address actually being dialled,
//     after name resolution, so a name that resolves (or re-resolves, DNS
//     rebinding) to such an address is refused too, before any packet is
//     sent;
//
//   - admits what the operator allows (Options.Allow: CIDRs, addresses and
//     host names), for in-house repositories;
//
//   - follows at most MaxRedirects redirects, only to http and https URLs,
//     each hop checked like the first;
//
//   - ignores HTTP_PROXY and HTTPS_PROXY: a proxy is used only when the
//     operator names it (Options.Proxy), and then every target host is
//     resolved and checked before the request goes to the proxy;
//
//   - reports every refused or failed connection (refused by the guard,
//     connection refused, timeout, DNS or TLS failure) with one text,
//     `cannot fetch <url>: the host could not be reached or is not
//     allowed`, so that a deployment's status cannot be used to scan the
//     network. The real cause is logged at debug level and kept behind
//     errors.Unwrap;
//
//   - carries the operator's credentials (Credentials, from a file, never
//     from Git) to the exact scheme, host and port, and path prefix, they
//     are configured for, on every hop, and strips them from any request
//     to anywhere else.
//
//     g, err := fetchguard.New(fetchguard.Options{Allow: []string{"10.20.0.0/16"}, Logger: log})
//     client := g.Client() // an *http.Client: guarded dialing, redirects, credentials
package fetchguard
