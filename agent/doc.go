// Package agent keeps clusters matching the repository. It watches the
// branch (the store announces every commit, its own, the API's and pushes
// taken in), finds the deployments whose files changed with a pruned tree
// diff, and reconciles each in a bounded worker pool: validate, render,
// apply as a Helm release, wait for health, and write the status back into
// the same file through gitstore. It also prunes releases whose files are
// gone, re-applies releases changed by hand (drift), and reports clusters it
// cannot reach.
//
// The agent never writes Git objects itself and never talks to the API; its
// commits go through gitstore like everyone's, authored by the agent.
package agent
