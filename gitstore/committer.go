package gitstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
)

// Change sets or deletes one file.
type Change struct {
	Path string
	// Content is the file's new content; nil deletes the file.
	Content []byte
	// Value, when set, is the parsed record Content encodes
	// (*schema.Deployment, *schema.User or *schema.Cluster), so the index
	// need not parse what the caller just rendered.
	Value any
}

// Commit is what a write wants recorded: one commit with these changes.
type Commit struct {
	Author  Signature
	Message string
	Changes []Change
}

// Mutation decides a write against the latest state: it checks what it
// needs in the view (existence, uniqueness, permissions) and returns the
// commit to make, nil for nothing to do, or an error that fails this write
// alone. It runs on the committer goroutine, must be fast, and must not
// call the Store.
type Mutation func(v *View) (*Commit, error)

// Result is the outcome of a write that succeeded.
type Result struct {
	// Commit is the durable commit that holds the write, or the head at the
	// time when the write changed nothing.
	Commit plumbing.Hash
	// Changed is false when the write made no commit (nothing differed).
	Changed bool
	// Records are the records the write produced, in the order of its
	// changes (nil for deletions).
	Records []*Record
}

type request struct {
	ctx    context.Context
	mutate Mutation
	done   chan outcome

	// Filled while the batch is built.
	res outcome
}

type outcome struct {
	res *Result
	err error
}

// Apply queues a write and waits until its commit is durable. Once queued,
// the write is finished even if ctx is cancelled meanwhile (its outcome is
// then still returned), so an acknowledged write is never lost and an
// unacknowledged one is never half-done.
func (s *Store) Apply(ctx context.Context, m Mutation) (*Result, error) {
	r := &request{ctx: ctx, mutate: m, done: make(chan outcome, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return nil, fmt.Errorf("queue write: %w", ctx.Err())
	}
	s.closeMu.RUnlock()
	o := <-r.done
	return o.res, o.err
}

// run is the committer: the only goroutine that writes the repository or
// changes the index. It works as a pipeline: each batch is made durable by
// a goroutine of its own (see persist) while the committer already builds
// the next batches on top of it, up to pipelineDepth batches in flight.
// Batches land (move the branch, become visible, answer their writers)
// strictly in order.
func (s *Store) run() {
	defer close(s.stopped)
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	var inflight []*batch        // oldest first
	var remoteHead plumbing.Hash // the remote's head to follow once nothing is in flight
	var yieldGap *time.Timer     // running after a yield: no other before it fires
	for {
		if !remoteHead.IsZero() && len(inflight) == 0 {
			if err := s.followRemote(remoteHead); err != nil {
				s.log.Error("following the remote failed", "err", err)
			}
			remoteHead = plumbing.ZeroHash
		}
		var landed <-chan error
		queue := s.queue
		if len(inflight) > 0 {
			landed = inflight[0].done
		}
		if len(inflight) >= pipelineDepth {
			queue = nil // writes wait in the queue and make a larger batch
		}
		yields, gapOver := s.yields, (<-chan time.Time)(nil)
		if yieldGap != nil {
			yields, gapOver = nil, yieldGap.C
		}
		select {
		case y := <-yields:
			yieldGap = time.NewTimer(s.yieldTo(y, inflight))
			inflight = nil
		case <-gapOver:
			yieldGap = nil
		case r := <-queue:
			inflight = s.start(inflight, s.gather(r, inflight))
		case err := <-landed:
			inflight = s.landFirst(inflight, err)
		case <-poll.C:
			if len(inflight) == 0 {
				s.checkExternal()
			}
		case remoteHead = <-s.remoteHeads:
		case <-s.refEvents:
			if len(inflight) == 0 {
				s.checkExternal()
			}
		case <-s.quit:
			// Close holds closeMu while closing quit, so no write is queued
			// after this point; finish the ones already queued.
			for {
				select {
				case r := <-s.queue:
					for len(inflight) >= pipelineDepth {
						inflight = s.landFirst(inflight, <-inflight[0].done)
					}
					inflight = s.start(inflight, s.drain(r))
					continue
				default:
				}
				break
			}
			for len(inflight) > 0 {
				inflight = s.landFirst(inflight, <-inflight[0].done)
			}
			return
		}
	}
}

// pipelineDepth bounds the batches in flight: one being made durable and
// one built on top of it. Deeper pipelines overlap more fsyncs but make
// smaller batches, and every batch writes each folder it touches whole
// (its first tree version), so at 64 writers 4 gave about 20 % fewer
// writes/s than 2 (BENCHMARKS.md).
const pipelineDepth = 2

// checkExternal takes in commits others made. It reads the branch's ref
// (41 bytes) and compares it with the head, rather than trusting the
// file's modification time and size: two updates within one clock tick
// leave both the same.
func (s *Store) checkExternal() {
	head, err := s.ref.read()
	if err == nil && head == s.head {
		return
	}
	if err := s.refresh(); err != nil {
		s.log.Error("reading external change failed", "err", err)
	}
}

// gather collects the writes of the next batch, first and those queued
// behind it, up to MaxBatch. While a batch is in flight, it keeps
// collecting until that batch's pack is on disk (or gatherWait passed):
// the new batch could not land before the one in flight anyway, and every
// batch writes each folder it changes whole (tens of kilobytes), so a
// batch started at the first write that came in was small, and its I/O
// per write large. At 64 writers the median batch went from 18 to 25
// writes and the writes' p99 latency from 47.9 to 42.8 ms (BENCHMARKS.md).
// With one writer nothing is in flight when a write comes, and it never
// waits. With a remote it gathers until the batch in flight was pushed.
func (s *Store) gather(first *request, inflight []*batch) []*request {
	if len(inflight) == 0 {
		return s.drain(first)
	}
	last := inflight[len(inflight)-1]
	staged, limit := last.staged, gatherWait
	if s.opts.Remote != nil {
		// A push takes a round trip to the remote (hundreds of
		// milliseconds to a forge) and the next batch cannot be pushed
		// before it: keep gathering until it is over, so one push carries
		// every write that came in meanwhile.
		staged, limit = last.settled, s.opts.RemoteTimeout
	}
	batch := []*request{first}
	wait := time.NewTimer(limit)
	defer wait.Stop()
	for len(batch) < s.opts.MaxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-staged:
			return s.drainInto(batch)
		case <-wait.C:
			return s.drainInto(batch)
		}
	}
	return batch
}

// gatherWait bounds how long gather waits for the batch in flight.
const gatherWait = 4 * time.Millisecond

// drain collects the writes queued behind first, up to MaxBatch.
func (s *Store) drain(first *request) []*request {
	return s.drainInto([]*request{first})
}

// drainInto adds the writes queued now to batch, up to MaxBatch.
func (s *Store) drainInto(batch []*request) []*request {
	for len(batch) < s.opts.MaxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// batch is a group of writes made into a chain of commits, one per write,
// and encoded as one pack, on its way to disk.
type batch struct {
	reqs       []*request
	view       *View
	parent     plumbing.Hash // the head it builds on
	head, tree plumbing.Hash // the head it makes
	pack       *encodedPack  // nil when no write changed anything
	hist       []histAdd
	hints      []treeHint
	commits    int
	started    time.Time
	staged     chan struct{} // closed once its pack is on disk (or failed to be)
	settled    chan struct{} // closed once persist returned (gather's signal with a remote)
	after      chan bool     // whether the batch before landed
	done       chan error    // the outcome of making it durable
}

// markStaged tells gather that the batch's pack is on disk (or failed to
// be); batches run alone (tryBatch) have no one to tell.
func (b *batch) markStaged() {
	if b.staged != nil {
		close(b.staged)
	}
}

// start builds reqs into a batch on top of the batches in flight and
// starts making it durable: its pack is written at once, its ref update
// waits until the batch before has landed. It returns the batches now in
// flight.
func (s *Store) start(inflight []*batch, reqs []*request) []*batch {
	head, tree, prev := s.head, s.headTree, (*View)(nil)
	if n := len(inflight); n > 0 {
		last := inflight[n-1]
		head, tree, prev = last.head, last.tree, last.view
	}
	b, err := s.build(reqs, head, tree, prev)
	if err != nil {
		// Nothing of the batch was written or became visible.
		s.answer(reqs, err)
		return inflight
	}
	b.after, b.done, b.staged, b.settled = make(chan bool, 1), make(chan error, 1), make(chan struct{}), make(chan struct{})
	if len(inflight) == 0 {
		b.after <- true
	}
	go func() {
		err := s.persist(b)
		close(b.settled)
		b.done <- err
	}()
	return append(inflight, b)
}

// landFirst finishes the oldest batch in flight, whose persist returned
// err. On success the index and head move, its writers are answered and
// the next batch may move the ref. On failure no later batch lands either
// (they build on commits that are not on the branch): every write of the
// failed batch and of those after it is run again, in order, on the head
// as it is now (see commitBatch). It returns the batches still in flight.
func (s *Store) landFirst(inflight []*batch, err error) []*batch {
	b, rest := inflight[0], inflight[1:]
	if err == nil {
		if b.pack != nil {
			s.publish(b)
		}
		s.answer(b.reqs, nil)
		if len(rest) > 0 {
			rest[0].view.prev = nil // b's changes are in the index now
			rest[0].after <- true
		}
		return rest
	}
	for _, r := range rest {
		r.after <- false
		<-r.done
	}
	switch {
	case errors.Is(err, ErrRemoteUnavailable):
		// Already tried for the remote's whole wait: fail these writes
		// (503), and try the later batches once more each.
		s.log.Warn("batch not committed: the remote is unavailable", "writes", len(b.reqs), "err", err)
		s.answer(b.reqs, err)
	case errors.Is(err, ErrDiskFull):
		// Running them again would fill the disk again: fail these
		// writes (503), and try the later batches, which failed because
		// this one did, once more each.
		s.answer(b.reqs, err)
	default:
		s.log.Warn("batch not committed, running its writes again", "writes", len(b.reqs), "batches after it", len(rest), "err", err)
		landed := false
		if errors.Is(err, ErrRemoteMoved) {
			if perr := s.pullRemote(); perr != nil {
				s.log.Warn("fetching from the remote failed", "err", perr)
			}
			// An earlier attempt of the push may have landed (its answer
			// lost) before someone pushed on top: then the writes are on
			// the branch already.
			landed = b.pack != nil && s.isAncestor(b.head, s.head, followLookBack)
		}
		if landed {
			s.answer(b.reqs, nil)
		} else {
			s.commitBatch(b.reqs)
		}
	}
	for _, r := range rest {
		s.commitBatch(r.reqs)
	}
	return nil
}

// commitBatch makes one commit per write of the batch, chained in order,
// makes them durable together and answers every writer, without
// pipelining: it is the path taken again when a batch failed, typically
// because someone pushed meanwhile.
func (s *Store) commitBatch(reqs []*request) {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 1 {
			// Another writer keeps winning the race for the branch (a
			// second store taking many writes): step aside for a random
			// moment so the two stop colliding.
			time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond))))
		}
		err = s.tryBatch(reqs)
		if errors.Is(err, ErrRemoteMoved) {
			// An engineer merged, or another replica wrote: fetch their
			// commits and redo the batch on top.
			before := s.head
			if rerr := s.pullRemote(); rerr != nil {
				err = rerr
				break
			}
			if s.head == before {
				// The fetch did not see the move yet (a forge serving
				// fetches from a replica): give it a moment.
				time.Sleep(time.Duration(attempt+1) * remoteRetryPause)
			}
			continue
		}
		if !errors.Is(err, ErrRefChanged) {
			break
		}
		// Someone pushed meanwhile: take in their commits and redo the
		// batch on top, re-running every write's checks.
		if rerr := s.refresh(); rerr != nil {
			err = rerr
			break
		}
	}
	if errors.Is(err, ErrRemoteMoved) {
		err = fmt.Errorf("%w: the remote branch kept moving: %w", ErrRemoteUnavailable, err)
	}
	s.answer(reqs, err)
}

// remoteRetryPause is the pause, times the attempt, before a batch is
// pushed again when the fetch after a rejected push found nothing new.
const remoteRetryPause = 50 * time.Millisecond

// maxAttempts bounds how often a batch is run again because the branch
// moved under it, before its writes fail.
const maxAttempts = 20

// answer tells every writer of a batch its outcome; err, when not nil,
// fails the writes that did not fail on their own. A full disk is logged
// once, however many batches it fails, until a batch lands again.
func (s *Store) answer(reqs []*request, err error) {
	if errors.Is(err, ErrDiskFull) {
		s.faults.failed(faultCommitDiskFull, "writes refused: the repository's disk is full; they are taken again as soon as space is freed",
			err, "dir", s.dir, "writes", len(reqs))
	}
	for _, r := range reqs {
		o := r.res
		if err != nil && o.err == nil {
			o = outcome{err: fmt.Errorf("commit: %w", err)}
		}
		r.done <- o
	}
}

// tryBatch builds the batch on the head and persists it. On any error
// nothing of the batch is visible: the index and head only change after
// the ref update succeeded.
func (s *Store) tryBatch(reqs []*request) error {
	b, err := s.build(reqs, s.head, s.headTree, nil)
	if err != nil || b.pack == nil {
		return err
	}
	b.after = make(chan bool, 1)
	b.after <- true
	if err := s.persist(b); err != nil {
		return err
	}
	s.publish(b)
	return nil
}

// build runs the writes of reqs in order on top of head (and prev, the
// view of the batch in flight), making one commit per write that changes
// something, and encodes the new objects as one pack. Each request's
// outcome is set; a write whose checks fail fails alone.
func (s *Store) build(reqs []*request, head, root plumbing.Hash, prev *View) (*batch, error) {
	b := &batch{reqs: reqs, view: newView(s.idx), parent: head, started: time.Now()}
	b.view.prev = prev
	parent := head
	objs := s.spareObjs
	if objs == nil {
		objs = newBatchObjects()
	}
	s.spareObjs = nil
	defer func() {
		// Encoded (or failed): the list's memory serves the next batch.
		objs.reset()
		s.spareObjs = objs
	}()
	now := s.opts.Now().Truncate(time.Second)
	for _, r := range reqs {
		r.res = outcome{}
		if err := r.ctx.Err(); err != nil {
			r.res.err = fmt.Errorf("write cancelled before it ran: %w", err)
			continue
		}
		c, err := r.mutate(b.view)
		if err != nil {
			r.res.err = err
			continue
		}
		if c == nil || len(c.Changes) == 0 {
			r.res.res = &Result{Commit: parent}
			continue
		}
		if err := s.checkKinds(c.Changes); err != nil {
			r.res.err = err
			continue
		}
		changes := make(map[string]plumbing.Hash, len(c.Changes))
		records := make([]*Record, len(c.Changes))
		mark := len(objs.objs)
		for i, ch := range c.Changes {
			if ch.Content == nil {
				changes[ch.Path] = plumbing.ZeroHash
				continue
			}
			o := newObject(plumbing.BlobObject, ch.Content)
			objs.add(o)
			changes[ch.Path] = o.hash
			records[i] = parseRecord(ch.Path, o.hash, ch.Content, ch.Value)
		}
		newRoot, err := editTree(s.trees, "", root, changes, objs)
		if err != nil {
			return nil, fmt.Errorf("build tree: %w", err)
		}
		if newRoot == root {
			objs.truncate(mark)
			r.res.res = &Result{Commit: parent, Records: records}
			continue
		}
		ids := touchedIDs(b.view, c.Changes, records)
		for i, ch := range c.Changes {
			if records[i] != nil || ch.Content == nil {
				b.view.set(ch.Path, records[i])
			}
		}
		treeOfCommit := newRoot
		if newRoot.IsZero() {
			// The write removed the last file: a commit needs a tree, the
			// empty one.
			empty := newObject(plumbing.TreeObject, nil)
			objs.add(empty)
			treeOfCommit = empty.hash
		}
		co := encodeCommit(treeOfCommit, parent, c.Author, s.opts.Committer, now, c.Message)
		objs.add(co)
		b.hist = append(b.hist, histAdd{co.hash, ids})
		parent, root = co.hash, newRoot
		r.res.res = &Result{Commit: co.hash, Changed: true, Records: records}
		b.commits++
	}
	b.head, b.tree = parent, root
	if b.commits == 0 {
		return b, nil
	}
	p, err := encodePack(objs.objs, s.takePackBuf())
	if err != nil {
		return nil, err
	}
	b.pack, b.hints = p, objs.hints
	return b, nil
}

// checkKinds refuses a write of a record this repository does not keep
// (a user written to the deployments repository, say). Removing such a
// file is allowed: it cleans up what the store ignores anyway.
func (s *Store) checkKinds(changes []Change) error {
	for _, ch := range changes {
		if ch.Content != nil && fileKind(ch.Path) != "" && s.kindOf(ch.Path) == "" {
			return fmt.Errorf("%s is not kept in this repository", ch.Path)
		}
	}
	return nil
}

// publish makes a durable batch visible: index, head, history, watchers.
func (s *Store) publish(b *batch) {
	// History first: whoever sees the new head finds its commits there
	// (the history file written for a head must hold them).
	for _, h := range b.hist {
		s.hist.add(h.commit, h.ids)
	}
	s.mu.Lock()
	b.view.commitTo(s.idx)
	s.head, s.headTree = b.head, b.tree
	s.announce()
	s.mu.Unlock()
	s.ownHeads.add(b.head)
	s.faults.ok(faultCommitDiskFull, "writes committed again: the repository's disk has space")
	s.log.Debug("batch committed", "writes", len(b.reqs), "commits", b.commits, "head", short(b.head), "took", time.Since(b.started))
	s.maybeCompact()
}

// takePackBuf returns the memory of a pack already written, or nil.
func (s *Store) takePackBuf() []byte {
	select {
	case b := <-s.packBufs:
		return b
	default:
		return nil
	}
}

// givePackBuf keeps the memory of a written pack for a later batch.
func (s *Store) givePackBuf(b []byte) {
	select {
	case s.packBufs <- b[:0]:
	default:
	}
}

// errBaseFailed stops a batch whose predecessor did not land.
var errBaseFailed = errors.New("the batch before did not land")

// persist makes a batch's pack durable and moves the branch from its
// parent to its head.
// Everything that does not depend on the batch before is done at once,
// while that batch may still be landing: the pack and its index are
// written and fsynced, and the ref's next value is written to a fsynced
// temporary file; once both are, the pack is published. Once b.after says the batch before landed, the
// ref is swapped under its lock with a single directory fsync. A crash at
// any point leaves the old head or the new one with all its objects (and
// at worst a pack nothing refers to, garbage for gc). A failure for a
// full disk is an ErrDiskFull; the batch's temporary files are removed.
func (s *Store) persist(b *batch) (err error) {
	defer func() { err = diskFull(err) }()
	if b.pack == nil {
		// Nothing to write: the batch lands when the one before it does.
		b.markStaged()
		if !<-b.after {
			return errBaseFailed
		}
		return nil
	}
	p, old, head := b.pack, b.parent, b.head
	var value *refValue
	var valueErr error
	prepared := make(chan struct{})
	go func() {
		defer close(prepared)
		value, valueErr = s.ref.prepare(head)
	}()
	p.seal()
	var staged *stagedPack
	staged, err = p.stage(s.dir, s.temps)
	s.givePackBuf(p.pack)
	p.pack = nil // written: its memory goes to the next batch
	<-prepared   // (a small file: ready by now, as a rule)
	if err == nil && valueErr != nil {
		// The ref cannot move (a full disk): the pack is not published
		// either, its temporary files go.
		staged.discard()
		err = valueErr
	}
	if err == nil {
		if err = staged.publish(); err == nil {
			if s.opts.CompactAfter > 0 {
				s.hints.add(b.hints) // for the merge of this pack
			}
			s.own.add(p.name) // merged later even when the ref does not move
		}
	}
	b.markStaged()
	ok := <-b.after
	if !ok || err != nil {
		if value != nil {
			value.discard()
		}
		if err != nil {
			return err
		}
		return errBaseFailed
	}
	if err := s.pushBatch(old, head); err != nil {
		value.discard()
		return err
	}
	if err := value.swap(old); err != nil {
		// The rename may have moved the ref before the fsync failed: then
		// the batch did land, and running its writes again would commit
		// them twice.
		if cur, rerr := s.ref.read(); rerr == nil && cur == head {
			s.log.Error("ref updated, but making the update durable failed", "err", err)
			return nil
		}
		if s.opts.Remote != nil {
			// The remote took the batch: it landed, whatever moved the
			// private mirror's branch meanwhile.
			return s.forceLocal(head, err)
		}
		return err
	}
	return nil
}

type histAdd struct {
	commit plumbing.Hash
	ids    []string
}

// touchedIDs lists the deployments a write changes: those of its new
// records and those whose files it deletes.
func touchedIDs(v *View, changes []Change, records []*Record) []string {
	var ids []string
	for i, ch := range changes {
		if r := records[i]; r != nil && r.HasDeployment() {
			ids = append(ids, r.DeploymentID())
		}
		if old := v.Record(ch.Path); old != nil && old.HasDeployment() {
			ids = append(ids, old.DeploymentID())
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// refresh takes in commits made by others: it diffs the known head tree
// against the branch's new head and updates the index and the history.
//
// The head only moves once the change is taken in, so a read that fails
// (another process merging the packs it read from, say) is tried again at
// the next poll, which compares the ref with the head.
func (s *Store) refresh() error {
	head, err := s.ref.read()
	if err != nil {
		return err
	}
	if head == s.head {
		return nil
	}
	c, err := s.readCommit(head)
	if err != nil {
		return err
	}
	view, n, err := s.changedView(s.headTree, c.tree)
	if err != nil {
		return fmt.Errorf("diff %s..%s: %w", short(s.head), short(head), err)
	}
	if err := s.addExternalHistory(head); err != nil {
		s.log.Warn("history of external commits incomplete", "err", err)
	}
	s.mu.Lock()
	view.commitTo(s.idx)
	old := s.head
	s.head, s.headTree = head, c.tree
	s.announce()
	s.mu.Unlock()
	s.log.Info("external change taken in", "from", short(old), "to", short(head), "files", n)
	return nil
}

// changedView reads the record files that differ between the trees from
// and to into a view of the index, and returns it with the number of
// files that differ.
func (s *Store) changedView(from, to plumbing.Hash) (*View, int, error) {
	changes, err := diffTrees(s.trees, from, to)
	if err != nil {
		return nil, 0, err
	}
	view := newView(s.idx)
	for _, ch := range changes {
		if s.kindOf(ch.Path) == "" {
			continue
		}
		if ch.To.IsZero() {
			view.set(ch.Path, nil)
			continue
		}
		data, err := s.objs.read(plumbing.BlobObject, ch.To)
		if err != nil {
			return nil, 0, err
		}
		view.set(ch.Path, parseRecord(ch.Path, ch.To, data, nil))
	}
	return view, len(changes), nil
}

// addExternalHistory records the commits between the known history and
// head, oldest first.
func (s *Store) addExternalHistory(head plumbing.Hash) error {
	var fresh []*commitInfo
	queue := []plumbing.Hash{head}
	seen := map[plumbing.Hash]bool{}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h.IsZero() || seen[h] || s.hist.isKnown(h) {
			continue
		}
		seen[h] = true
		c, err := s.readCommit(h)
		if err != nil {
			return err
		}
		fresh = append(fresh, c)
		queue = append(queue, c.parents...)
	}
	slices.Reverse(fresh)
	slices.SortStableFunc(fresh, func(a, b *commitInfo) int { return a.when.Compare(b.when) })
	for _, c := range fresh {
		ids, err := s.touchedDeployments(c, nil)
		if err != nil {
			return err
		}
		s.hist.add(c.hash, ids)
	}
	return nil
}

// touchedDeployments lists the deployments whose files commit c changed
// compared with its first parent. known, when not nil, gives the ids of
// blobs already parsed, which are then not read again.
func (s *Store) touchedDeployments(c *commitInfo, known map[plumbing.Hash]string) ([]string, error) {
	var parentTree plumbing.Hash
	if len(c.parents) > 0 {
		p, err := s.readCommit(c.parents[0])
		if err != nil {
			return nil, err
		}
		parentTree = p.tree
	}
	changes, err := diffTrees(s.trees, parentTree, c.tree)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, ch := range changes {
		if s.kindOf(ch.Path) != "deployment" {
			continue
		}
		blob := ch.To
		if blob.IsZero() {
			blob = ch.From
		}
		if id, ok := known[blob]; ok {
			ids = append(ids, id)
			continue
		}
		data, err := s.objs.read(plumbing.BlobObject, blob)
		if err != nil {
			return nil, err
		}
		if id := deploymentID(data); id != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// maybeCompact asks the housekeeper to merge this process's packs once
// there are many.
func (s *Store) maybeCompact() {
	if s.opts.CompactAfter > 0 && s.own.len() >= s.opts.CompactAfter {
		select {
		case s.compactNow <- struct{}{}:
		default: // one is running or already asked for
		}
	}
}

// housekeeper merges packs in the background until ctx ends, so writers
// never wait for it, and keeps the history file current. Readers that looked up a merged pack meanwhile re-read
// the pack list and find the objects in the new one.
func (s *Store) housekeeper(ctx context.Context) {
	save := time.NewTicker(s.opts.historyCheck)
	defer save.Stop()
	var diskWait <-chan time.Time // set while merges wait for disk space
	for {
		select {
		case <-ctx.Done():
			return
		case <-save.C:
			if s.hist.dueForSave() {
				s.mu.RLock()
				head := s.head
				s.mu.RUnlock()
				s.saveHistory(head)
			}
			continue
		case <-s.compactNow:
			if diskWait != nil {
				continue // tried again when diskWait fires
			}
		case <-diskWait:
			diskWait = nil
		}
		own := s.own.snapshot()
		names := pickMerge(s.dir, own)
		// Oldest first, so the earlier version a hint refers to is
		// usually in the merged pack by the time its tree comes.
		slices.SortFunc(names, func(a, b string) int { return slices.Index(own, a) - slices.Index(own, b) })
		if len(names) < 2 {
			continue
		}
		if need, free, err := mergeRoom(s.dir, names, s.opts.mergeHeadroom); err == nil && free < need {
			// The merged pack takes up to what it merges until they are
			// removed: it must not take the committer's last bytes.
			s.faults.failed(faultMergeDiskFull, "merging packs waits for disk space", nil,
				"dir", s.dir, "packs", len(names), "need_mb", need>>20, "free_mb", free>>20)
			diskWait = time.After(s.opts.diskRetry)
			continue
		}
		start := time.Now()
		// Pace the merge unless packs pile up: then catch up at full speed.
		merged, err := mergePacks(s.dir, names, s.own.len() < 8*s.opts.CompactAfter, s.hints)
		if err = diskFull(err); errors.Is(err, ErrDiskFull) {
			// Its temporary file is gone; the packs stay to be merged
			// once there is space.
			s.faults.failed(faultMergeDiskFull, "merging packs waits for disk space", err, "dir", s.dir, "packs", len(names))
			diskWait = time.After(s.opts.diskRetry)
			continue
		}
		if err != nil {
			// Leave these packs to git rather than failing again after
			// every batch.
			s.log.Warn("merging packs failed; leaving them as they are", "packs", len(names), "err", err)
			s.own.forget(names)
			continue
		}
		s.faults.ok(faultMergeDiskFull, "packs are merged again: the disk has space")
		s.own.replace(names, merged)
		// Readers hold the reader's lock for a whole lookup, so none is
		// half-way through a pack while it disappears.
		mergedAt := time.Now()
		s.removeMerged(ctx, names, merged)
		s.log.Debug("packs merged", "packs", len(names), "into", merged, "took", time.Since(start).Round(time.Millisecond),
			"removing", time.Since(mergedAt).Round(time.Millisecond))
		// A merge's fsyncs and unlinks share the file system's journal
		// with the committer's: merge at most once per mergeInterval
		// unless packs pile up far beyond CompactAfter.
		pause := time.NewTimer(mergeInterval)
		for s.own.len() < 8*s.opts.CompactAfter {
			select {
			case <-ctx.Done():
				pause.Stop()
				return
			case <-pause.C:
			}
			break
		}
		pause.Stop()
		s.rollUp(ctx)    // past the merges' reach, git takes over
		s.maybeCompact() // more may have piled up meanwhile
	}
}

// removeMerged removes the packs a merge copied into merged, a few at a
// time: hundreds of unlinks at once (with the file system's online
// discard) held up the journal commits the committer's fsyncs wait for.
// Readers hold the reader's lock for a whole lookup, so none is half-way
// through a pack while it disappears. On ctx's end the rest stay (their
// objects are also in merged; the next start adopts and merges them).
func (s *Store) removeMerged(ctx context.Context, names []string, merged string) {
	for len(names) > 0 && ctx.Err() == nil {
		n := min(len(names), removeChunk)
		s.objs.locked(func() { removePacks(s.dir, names[:n], merged) })
		names = names[n:]
		if len(names) > 0 {
			time.Sleep(removePause)
		}
	}
	// The pack list is read again once, at the end. A lookup meanwhile that
	// finds its object in a pack already removed reads the list again
	// itself (see read). Reading it again after every chunk made go-git
	// reload every pack index on the next lookup each time: with hundreds
	// of packs (a start after a heavy run) that held up the committer's
	// reads for a second at 1,000 writes/s.
	s.objs.reindex()
}

// removeChunk packs are removed at a time, removePause apart.
const (
	removeChunk = 16
	removePause = 5 * time.Millisecond
)

// The housekeeper writes the history file (and so folds the commits added
// since into the compact arrays) every historySaveInterval once
// historySaveAfter commits were added, and sooner when they reach a
// quarter of those the file holds: under a heavy load the maps of new
// commits would otherwise hold a minute of writes (about 27 MB at 3,500
// writes/s). It looks every historyCheckInterval.
const (
	historySaveInterval  = time.Minute
	historyCheckInterval = 5 * time.Second
	historyFoldShare     = 4
)

// mergeInterval is the least time between two merges of packs.
const mergeInterval = time.Second

// mergeHeadroom is the free space a merge leaves the committer: a merge
// starts only when the disk has the size of the packs it merges free
// (the merged pack is at most that) and this much more, about two full
// batches of 256 writes.
const mergeHeadroom = 16 << 20

// diskFullRetry is how long merges wait after finding the disk too full
// for one, before looking again.
const diskFullRetry = 5 * time.Second

// mergeRoom returns the free space a merge of names needs (their size
// and headroom, see mergeHeadroom) and the space free on the disk of
// gitDir.
func mergeRoom(gitDir string, names []string, headroom int64) (need, free int64, err error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	need = headroom
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n+".pack")); err == nil {
			need += fi.Size()
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return need, 0, err
	}
	return need, int64(st.Bavail) * st.Bsize, nil
}
