// Package gitstore keeps Mengi's deployments, users and clusters in a bare
// Git repository, one YAML file per record, one commit per change.
//
// Writes go through a single committer goroutine that serialises them,
// runs each write's checks against the latest state (so name uniqueness is
// decided inside the serialised step), and writes each batch of queued
// writes as a chain of commits, one per write, in one packfile behind one
// fsync barrier, followed by one atomic, git-compatible update of the
// branch ref. A writer is answered only once its commit is durable.
//
// Reads never decode Git objects per request: an in-memory index of every
// record, built once from the head tree and kept current by the committer
// and by external pushes, answers get and list (it holds each deployment
// packed in one string; Record.Deployment unpacks a copy); a per-deployment history
// index (saved in the git directory as mengi-history, so a restart walks
// only new commits) answers history. The worktree API is never used.
package gitstore
