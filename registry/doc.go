// Package registry records who may use Mengi and where deployments may go:
// users with their API keys, and clusters. Both are files in the
// repository, so adding a key or a cluster is a commit like any other.
package registry
