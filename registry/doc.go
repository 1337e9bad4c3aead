// Package registry is the operator's repository: who may use Mengi (users
// with the SHA-256 of each API key) and where deployments may go
// (clusters, with the users allowed on each). It is a Git repository of
// its own, apart from the deployments repository that engineers change
// through pull requests, so no commit to deployments can mint a key, add
// a user or open a cluster to someone. The API and the operator commands
// (`mengi keys`, `mengi clusters`) write it; the agent reads it and
// records each cluster's reachability in it.
package registry
