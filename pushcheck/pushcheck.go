// Package pushcheck checks a push to the deployments repository before git
// takes it in (git's pre-receive hook, `mengi check-push`): every
// deployment file the push adds or changes must be one the store and the
// agent would take (the schema, its path, a registered cluster and owner,
// a cluster that allows the owner, an owner that never changes), and no
// user or cluster record may be pushed there. Each problem is one line
// naming the file, the line, the field and the rule. It reads the pushed
// objects with the git CLI, which sees the quarantine git keeps them in
// while the hook runs.
package pushcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// Admitter is what the check needs of the registry (registry.Registry).
type Admitter interface {
	Admit(d *schema.Deployment) (*schema.Cluster, error)
}

// Problem is one broken rule of a pushed file.
type Problem struct {
	Path string
	schema.FieldError
}

// String renders the problem as Line does.
func (p Problem) String() string { return Line(p.Path, p.FieldError) }

// Line renders a file's problem as FILE:LINE: FIELD: MESSAGE, leaving out
// the line when it is unknown and the field for the whole document.
func Line(path string, e schema.FieldError) string {
	var b strings.Builder
	b.WriteString(path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if f := e.Field(); f != "" {
		b.WriteString(f + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// zero is git's id of no commit (a branch created or deleted).
const zero = "0000000000000000000000000000000000000000"

// change is one file a push changes.
type change struct {
	path     string
	from, to string // blob ids; zero when absent
}

// Check returns the problems of moving the branch of the repository at
// gitDir from commit old to commit new (old zero: a new branch).
func Check(ctx context.Context, gitDir, old, new string, reg Admitter) ([]Problem, error) {
	r, err := Inspect(ctx, gitDir, old, new, reg)
	if err != nil {
		return nil, err
	}
	return r.Problems, nil
}

// File is a deployment file a change adds, changes or deletes: its
// content before and after (nil when absent, or over the size limit).
type File struct {
	Path          string
	Before, After []byte
}

// Result is what a change does to the deployments: its problems and the
// deployment files it touches, in path order.
type Result struct {
	Problems []Problem
	Files    []File
}

// Inspect checks moving the branch from commit old to commit new, as
// Check does, and returns the deployment files it touches beside the
// problems (what a pull request's report shows).
func Inspect(ctx context.Context, gitDir, old, new string, reg Admitter) (*Result, error) {
	if new == zero {
		return &Result{Problems: []Problem{{Path: "(branch)", FieldError: schema.FieldError{Msg: "the deployments branch cannot be deleted"}}}}, nil
	}
	changes, err := diff(ctx, gitDir, old, new)
	if err != nil {
		return nil, err
	}
	blobs, err := readBlobs(ctx, gitDir, changes)
	if err != nil {
		return nil, err
	}
	owners := map[string]string{} // deployment id → owner, before the change
	ids := map[string]string{}    // path → deployment id, before the change
	for _, c := range changes {
		if c.from != zero && gitstore.IsDeploymentPath(c.path) && blobs[c.from].data != nil {
			if d, errs := schema.ParseFile(blobs[c.from].data); errs == nil {
				owners[d.Metadata.ID] = d.Metadata.UserID
				ids[c.path] = d.Metadata.ID
			}
		}
	}
	r := &Result{}
	for _, c := range changes {
		if gitstore.IsDeploymentPath(c.path) {
			r.Files = append(r.Files, File{Path: c.path, Before: blobs[c.from].data, After: blobs[c.to].data})
		}
		if c.to == zero {
			continue
		}
		for _, e := range checkFile(c.path, blobs[c.to], owners, ids[c.path], reg) {
			r.Problems = append(r.Problems, Problem{Path: c.path, FieldError: e})
		}
	}
	return r, nil
}

// checkFile returns the problems of one pushed file.
// previousID is the id of the deployment the file held before ("" when
// none).
func checkFile(p string, b blob, owners map[string]string, previousID string, reg Admitter) schema.Errors {
	if gitstore.IsOperatorPath(p) {
		return schema.Errors{{Msg: "users and clusters live in the operator's registry, not in the deployments repository; this file would be ignored"}}
	}
	if !gitstore.IsDeploymentPath(p) {
		return nil
	}
	if b.data == nil {
		return schema.Errors{{Line: 1, Msg: fmt.Sprintf("the file is %d bytes; a deployment file holds at most %d (%d MiB)", b.size, schema.MaxFileBytes, schema.MaxFileBytes>>20)}}
	}
	d, errs := schema.ParseFile(b.data)
	if errs != nil {
		return errs
	}
	if previousID != "" && previousID != d.Metadata.ID {
		errs = append(errs, schema.FieldError{Loc: []any{"metadata", "id"}, Line: schema.LineOf(b.data, "metadata", "id"),
			Msg: "this file holds deployment " + previousID + "; a deployment's id never changes (a new deployment goes in a new file)"})
	}
	if owner, ok := owners[d.Metadata.ID]; ok && owner != d.Metadata.UserID {
		errs = append(errs, schema.FieldError{Loc: []any{"metadata", "user_id"}, Line: schema.LineOf(b.data, "metadata", "user_id"),
			Msg: "deployment " + d.Metadata.ID + " belongs to user " + owner + "; a deployment's owner never changes"})
	}
	return append(errs, Rules(p, b.data, d, reg)...)
}

// Rules checks a valid deployment d, the file holding data, beyond its
// schema, as the store and the agent do: a file at repoPath (its path in
// the repository; "" when unknown) must be where its spec says, and with a
// registry (reg not nil), its cluster and owner must be registered and the
// cluster must allow the owner.
func Rules(repoPath string, data []byte, d *schema.Deployment, reg Admitter) schema.Errors {
	var errs schema.Errors
	problem := func(msg string, loc ...any) {
		errs = append(errs, schema.FieldError{Loc: loc, Msg: msg, Line: schema.LineOf(data, loc...)})
	}
	if want := gitstore.DeploymentPath(d.Spec.ClusterID, d.Spec.Name); repoPath != "" && want != repoPath {
		problem("spec.cluster_id and spec.name say the file should be at "+want, "spec", "name")
	}
	if reg == nil {
		return errs
	}
	_, err := reg.Admit(d)
	var denied *registry.AccessError
	switch {
	case errors.Is(err, registry.ErrUnknownCluster):
		problem("cluster "+d.Spec.ClusterID+" is not registered", "spec", "cluster_id")
	case errors.As(err, &denied):
		field := strings.SplitN(denied.Field, ".", 2)
		problem(denied.Msg, field[0], field[1])
	}
	return errs
}

// diff lists the files that differ between two commits (every file of
// new when old is zero).
func diff(ctx context.Context, gitDir, old, new string) ([]change, error) {
	if old == zero {
		out, err := git(ctx, gitDir, nil, "ls-tree", "-r", "-z", new)
		if err != nil {
			return nil, err
		}
		var cs []change
		for _, rec := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			meta, path, ok := strings.Cut(rec, "\t")
			if f := strings.Fields(meta); ok && len(f) == 3 && f[1] == "blob" {
				cs = append(cs, change{path: path, from: zero, to: f[2]})
			}
		}
		return cs, nil
	}
	out, err := git(ctx, gitDir, nil, "diff-tree", "-r", "-z", "--no-renames", old, new)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	var cs []change
	for i := 0; i+1 < len(parts); i += 2 {
		f := strings.Fields(parts[i]) // :oldmode newmode oldblob newblob status
		if len(f) != 5 {
			return nil, fmt.Errorf("git diff-tree: unexpected line %q", parts[i])
		}
		cs = append(cs, change{path: parts[i+1], from: f[2], to: f[3]})
	}
	return cs, nil
}

// blob is a file's content, or only its size when it is over
// schema.MaxFileBytes (never read into memory).
type blob struct {
	data []byte
	size int
}

// readBlobs reads the changed record files' contents, before and after,
// streaming one `git cat-file --batch`.
func readBlobs(ctx context.Context, gitDir string, changes []change) (map[string]blob, error) {
	var ids bytes.Buffer
	for _, c := range changes {
		for _, id := range []string{c.from, c.to} {
			if id != zero && (gitstore.IsDeploymentPath(c.path) || gitstore.IsOperatorPath(c.path)) {
				ids.WriteString(id + "\n")
			}
		}
	}
	cmd := exec.CommandContext(ctx, "git", "--git-dir", gitDir, "cat-file", "--batch")
	cmd.Stdin = &ids
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	blobs, err := readBatch(bufio.NewReader(stdout))
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("git cat-file: %w", werr)
	}
	return blobs, err
}

// readBatch reads `git cat-file --batch` output.
func readBatch(r *bufio.Reader) (map[string]blob, error) {
	blobs := map[string]blob{}
	for {
		header, err := r.ReadString('\n')
		if err == io.EOF && header == "" {
			return blobs, nil
		}
		f := strings.Fields(header)
		if err != nil || len(f) != 3 {
			return nil, fmt.Errorf("git cat-file: unexpected header %q", header)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file: size %q", f[2])
		}
		b := blob{size: size}
		if size <= schema.MaxFileBytes {
			b.data = make([]byte, size)
			_, err = io.ReadFull(r, b.data)
		} else {
			_, err = io.CopyN(io.Discard, r, int64(size))
		}
		if _, nerr := r.ReadByte(); err == nil {
			err = nerr
		}
		if err != nil {
			return nil, fmt.Errorf("git cat-file: %w", err)
		}
		blobs[f[0]] = b
	}
}

// git runs the git CLI in gitDir with the environment of the hook (which
// points git at the quarantined objects of the push).
func git(ctx context.Context, gitDir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", gitDir}, args...)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
