package gitstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Options configure a Store.
type Options struct {
	// Branch is the branch records live on; default "main".
	Branch string
	// Holds says which records the repository keeps: every kind (the
	// default), only deployments (the repository engineers change), or
	// only users and clusters (the operator's registry). Files of the other
	// kinds are ignored as a README would be, and writing one is an error,
	// so a file pushed to the deployments repository can never act as a
	// user, an API key or a cluster.
	Holds Holds
	// Committer signs every commit; default "Mengi GitOps <gitops@mengi.local>".
	Committer Signature
	// MaxBatch bounds how many queued writes share one durability barrier;
	// default 256.
	MaxBatch int
	// PollInterval is how often the branch is checked for commits made by
	// others (a `git push`); default 1s.
	PollInterval time.Duration
	// CompactAfter is the number of packs written by this process that
	// makes the housekeeper merge them into one, in the background;
	// default 32. Negative disables it.
	CompactAfter int
	// Remote, when set, is the repository this one mirrors: every batch is
	// pushed there before it lands, and its branch is followed (see
	// Remote). The local repository is then the process's private copy.
	Remote Remote
	// RemotePoll is how often the remote is fetched when no Sync asked
	// for it sooner; default 10s.
	RemotePoll time.Duration
	// RemoteTimeout bounds one fetch from the remote; default 30s (a
	// push is bounded by the Remote itself).
	RemoteTimeout time.Duration
	// Logger receives one line per batch and per external change.
	Logger *slog.Logger
	// Now gives the commit time; default time.Now.
	Now func() time.Time

	historyCheck time.Duration // how often the housekeeper considers a history save (tests)
	diskRetry    time.Duration // how long merges wait on a full disk (tests)
	faultSettle  time.Duration // how long a failure must not recur to be over (tests)
	// mergeHeadroom is the space a merge leaves free (tests: negative, to
	// merge however full the disk is).
	mergeHeadroom int64
}

func (o *Options) defaults() {
	if o.historyCheck == 0 {
		o.historyCheck = historyCheckInterval
	}
	if o.diskRetry == 0 {
		o.diskRetry = diskFullRetry
	}
	if o.faultSettle == 0 {
		o.faultSettle = faultSettle
	}
	if o.mergeHeadroom == 0 {
		o.mergeHeadroom = mergeHeadroom
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Committer.Email == "" {
		o.Committer = Signature{Name: "Mengi GitOps", Email: "gitops@mengi.local"}
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.RemotePoll <= 0 {
		o.RemotePoll = 10 * time.Second
	}
	if o.RemoteTimeout <= 0 {
		o.RemoteTimeout = 30 * time.Second
	}
	if o.CompactAfter == 0 {
		o.CompactAfter = 32
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// treeCacheSize is how many trees besides the newest version of each
// folder the tree cache keeps (for diffs and history; the committer only
// edits newest versions, which are always kept).
const treeCacheSize = 64

// Store is a bare Git repository of deployment, user and cluster records.
// All methods are safe for concurrent use.
type Store struct {
	dir   string
	opts  Options
	log   *slog.Logger
	ref   refFile
	objs  *objectReader
	trees *treeCache
	// spareObjs is the object list of the last batch built, emptied, for
	// the next one (used by the committer goroutine only).
	spareObjs *batchObjects
	hist      *history
	// snapshotHead is the commit whose index the snapshot file holds, when
	// this process loaded or saved it (Close then need not save it again).
	snapshotHead plumbing.Hash

	queue   chan *request
	quit    chan struct{}
	stopped chan struct{}
	bgDone  chan struct{}
	cancel  context.CancelFunc

	closeMu sync.RWMutex
	closed  bool

	mu       sync.RWMutex // guards idx, head, headTree
	idx      *index
	head     plumbing.Hash
	headTree plumbing.Hash

	changed    chan struct{} // closed when the head moves; guarded by mu
	refEvents  chan struct{} // the watcher saw the ref change on disk
	own        ownPacks      // packs written by this process, not merged yet
	hints      *deltaHints   // deltas for the whole trees in own packs
	packBufs   chan []byte   // memory of written packs, for the next ones
	temps      *tempFiles    // files made ahead for the committer's packs
	faults     *faults       // failures logged once per kind while they last
	compactNow chan struct{} // asks the housekeeper to merge them

	yields      chan *yieldRequest // Yield: hold back for a push
	syncNow     chan struct{}      // Sync: fetch from the remote now
	remoteHeads chan plumbing.Hash // the remote's head, when it moved
	ownHeads    ownHeads           // the last heads this store made (committer only)
}

// Open opens the bare repository at dir, creating it when it is missing,
// loads the index from the branch head and starts the committer. Close
// stops it.
func Open(dir string, opts Options) (*Store, error) {
	opts.defaults()
	if err := initRepo(dir, opts.Branch); err != nil {
		return nil, err
	}
	cleanStale(dir, opts.Logger)
	left, checked, err := verifyPacks(dir, opts.Logger)
	if err != nil {
		return nil, damaged(err, opts)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		ref:      refFile{gitDir: dir, name: plumbing.NewBranchReferenceName(opts.Branch), spares: &spareFiles{}},
		objs:     newObjectReader(dir, left, checked, opts.Logger),
		hist:     newHistory(),
		queue:    make(chan *request, 4096),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		bgDone:   make(chan struct{}),
		idx:      newIndex(),
		hints:    newDeltaHints(),
		packBufs: make(chan []byte, pipelineDepth+1),
		faults:   newFaults(opts.Logger, opts.faultSettle),

		compactNow: make(chan struct{}, 1),
		changed:    make(chan struct{}),
		refEvents:  make(chan struct{}, 1),

		yields:      make(chan *yieldRequest),
		syncNow:     make(chan struct{}, 1),
		remoteHeads: make(chan plumbing.Hash),
	}
	s.temps = newTempFiles(dir, s.faults)
	s.trees = newTreeCache(s.objs, treeCacheSize)
	if opts.Remote != nil {
		ctx, cancel := context.WithTimeout(context.Background(), opts.RemoteTimeout)
		err := s.syncRemote(ctx)
		cancel()
		if err != nil && !s.startOffline(err) {
			s.objs.close()
			if errors.Is(err, ErrDamaged) {
				return nil, damaged(err, opts)
			}
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
	}
	head, err := s.ref.read()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := s.loadIndex(head); err != nil {
		s.objs.close()
		if errors.Is(err, ErrDamaged) {
			return nil, damaged(err, opts)
		}
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	s.own.adopt(dir, left)
	s.log.Info("repository opened", "dir", dir, "head", short(head), "records", len(s.idx.files), "took", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var bg sync.WaitGroup
	bg.Add(4)
	go func() {
		defer bg.Done()
		s.watchRefs(ctx)
	}()
	go func() {
		defer bg.Done()
		s.temps.fill(ctx)
	}()
	go func() {
		defer bg.Done()
		s.hist.build(ctx, s, head)
		s.objs.shrinkCache(runCacheSize)
	}()
	go func() {
		defer bg.Done()
		s.housekeeper(ctx)
	}()
	if opts.Remote != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			s.follow(ctx)
		}()
	}
	go func() {
		bg.Wait()
		close(s.bgDone)
	}()
	go s.run()
	s.maybeCompact()
	return s, nil
}

// damaged returns the *DamagedError in err, which says which repository
// it is about, marked as a mirror when the store has a remote.
func damaged(err error, opts Options) error {
	var de *DamagedError
	if !errors.As(err, &de) {
		return err
	}
	de.Mirror, de.opening = opts.Remote != nil, true
	return de
}

// initRepo creates a bare repository whose HEAD names the branch, unless
// one is there already. When that fails (a full disk), what it created is
// removed: a half-made repository (an empty HEAD, no config) could not be
// opened once space was freed, nor made again.
func initRepo(dir, branch string) (err error) {
	if _, err := os.Stat(filepath.Join(dir, "objects")); err == nil {
		return diskFull(checkObjectsOnReceive(dir))
	}
	existed := map[string]bool{}
	entries, statErr := os.ReadDir(dir)
	for _, e := range entries {
		existed[e.Name()] = true
	}
	defer func() {
		if err == nil {
			return
		}
		err = diskFull(err)
		if errors.Is(statErr, os.ErrNotExist) {
			os.RemoveAll(dir)
			return
		}
		made, _ := os.ReadDir(dir)
		for _, e := range made {
			if !existed[e.Name()] {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create repository %s: %w", dir, err)
	}
	_, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	})
	if err != nil {
		return fmt.Errorf("create repository %s: %w", dir, err)
	}
	for _, d := range []string{"objects/pack", "refs/heads"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create repository %s: %w", dir, err)
		}
	}
	if err := checkObjectsOnReceive(dir); err != nil {
		return err
	}
	return syncDir(dir)
}

// checkObjectsOnReceive makes git check every object pushed or fetched
// into the repository (receive.fsckObjects, transfer.fsckObjects): a tree
// with a ".." entry or another broken object is refused at the door, not
// found later by `git fsck --strict`. Set in repositories of earlier
// versions too; a value the operator wrote is kept.
func checkObjectsOnReceive(dir string) error {
	r, err := git.PlainOpen(dir)
	if err != nil {
		return fmt.Errorf("open repository %s: %w", dir, err)
	}
	cfg, err := r.Config()
	if err != nil {
		return fmt.Errorf("read the configuration of %s: %w", dir, err)
	}
	changed := false
	for _, section := range []string{"receive", "transfer"} {
		if sec := cfg.Raw.Section(section); !sec.HasOption("fsckObjects") {
			sec.SetOption("fsckObjects", "true")
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.SetConfig(cfg); err != nil {
		return fmt.Errorf("configure %s: %w", dir, err)
	}
	return nil
}

// cleanStale removes what a crash can leave behind: temporary pack and ref
// files and our ref lock. Objects without a ref are harmless garbage for
// gc. A pack without its index is left where it is, as git leaves it (the
// object reader leaves it out, see readablePacks), and named in a
// warning: its objects cannot be read, and deleting it could lose the
// only copy of some (a copy that missed the index). This store publishes
// a pack's index first, so its own crashes never leave one.
func cleanStale(dir string, log *slog.Logger) {
	// (Versions before 2026-11-27 wrote temporary packs in the pack directory.)
	tmps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "tmp_mengi_*"))
	refTmps, _ := filepath.Glob(filepath.Join(dir, "tmp_mengi_*"))
	tmps = append(tmps, refTmps...)
	for _, t := range tmps {
		// Another store on the repository may be writing a young one.
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > staleTemp {
			os.RemoveAll(t) // a roll-up's is a folder
		}
	}
	_, noIndex, _ := listPacks(dir)
	for _, p := range noIndex {
		// git publishes a pushed pack's index right after the pack: a
		// young one may be a push in progress.
		if fi, err := os.Stat(filepath.Join(packDir(dir), p+".pack")); err == nil && time.Since(fi.ModTime()) > orphanAge {
			log.Warn("a pack without its index is left out: its objects cannot be read. If they are needed, `git index-pack` on it writes the index; if `git fsck` is clean without it, remove it",
				"file", "objects/pack/"+p+".pack")
		}
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "refs", "heads", "*.lock"))
	for _, l := range locks {
		if fi, err := os.Stat(l); err == nil && time.Since(fi.ModTime()) > lockWait {
			log.Warn("removing stale ref lock", "file", l)
			os.Remove(l)
		}
	}
}

// staleTemp is the age from which a temporary pack file was left by a
// crash rather than being written by another store on the repository.
const staleTemp = 10 * time.Minute

// orphanAge is the age from which a pack without its index is named in a
// warning rather than taken for a push in progress.
const orphanAge = 10 * time.Second

// loadIndex reads every record of the head tree. Files are read in tree
// order and parsed by a few workers in parallel.
func (s *Store) loadIndex(head plumbing.Hash) error {
	s.head = head
	if head.IsZero() {
		return nil
	}
	c, err := s.readCommit(head)
	if err != nil {
		return err
	}
	if commit, tree, ok := s.loadSnapshot(); ok {
		// Saved at the last close: take in what changed since.
		view, n, err := s.changedView(tree, c.tree)
		if err != nil {
			return err
		}
		view.commitTo(s.idx)
		s.headTree = c.tree
		s.snapshotHead = commit
		s.log.Info("index loaded from its snapshot", "snapshot", short(commit), "files changed since", n)
		return nil
	}
	s.headTree = c.tree
	type file struct {
		path string
		blob plumbing.Hash
		data []byte
	}
	return fillIndex(s.idx, func(files chan<- file) error {
		return walkFiles(s.trees, "", c.tree, func(p string, blob plumbing.Hash) error {
			if s.kindOf(p) == "" {
				return nil
			}
			data, err := s.objs.read(plumbing.BlobObject, blob)
			if err != nil {
				return err
			}
			files <- file{p, blob, data}
			return nil
		})
	}, func(f file) (*Record, error) { return parseRecord(f.path, f.blob, f.data, nil), nil })
}

// blobIDs maps the blob of every deployment file of the index to the
// deployment's id (a blob's id does not depend on when it was read, so the
// committer may move the index on afterwards).
func (s *Store) blobIDs() map[plumbing.Hash]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := make(map[plumbing.Hash]string, len(s.idx.deployments))
	for _, r := range s.idx.files {
		if r.HasDeployment() && r.Err() == nil {
			m[r.Blob()] = r.DeploymentID()
		}
	}
	return m
}

func (s *Store) readCommit(h plumbing.Hash) (*commitInfo, error) {
	data, err := s.objs.read(plumbing.CommitObject, h)
	if err != nil {
		return nil, err
	}
	return decodeCommit(h, data)
}

// Close stops accepting writes, finishes the writes already queued, and
// releases the repository.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.closeMu.Unlock()
	<-s.stopped
	s.cancel()
	<-s.bgDone
	s.saveSnapshot()
	if s.hist.unsaved() > 0 {
		s.saveHistory(s.head)
	}
	s.ref.spares.removeAll()
	return s.objs.close()
}

// Dir is the repository's directory.
func (s *Store) Dir() string { return s.dir }

// Head returns the commit the index reflects.
func (s *Store) Head() plumbing.Hash {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head
}

// Read runs fn with a consistent view of the head. fn must not keep the
// view after it returns, and must not call Store methods that write.
func (s *Store) Read(fn func(v *View)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(newView(s.idx))
}

// DeploymentsOf returns up to limit deployments of user (oldest first)
// after skipping skip of those that match keep.
func (s *Store) DeploymentsOf(userID string, skip, limit int, keep func(*Record) bool) []*Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.idx.byUser[userID]
	if keep == nil {
		list = list[min(skip, len(list)):]
		return slices.Clone(list[:min(limit, len(list))])
	}
	var out []*Record
	for _, r := range list {
		if !keep(r) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(out) >= limit {
			break
		}
		out = append(out, r)
	}
	return out
}

// UserByKey returns the user holding the API key with this SHA-256.
func (s *Store) UserByKey(sha string) *Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.idx.usersByKey[sha]; ok {
		return s.idx.files[p]
	}
	return nil
}

// HistoryReady waits until the history index is built (it is built in the
// background at Open, from the history file plus the commits since) and
// returns the error that stopped the build, if any.
func (s *Store) HistoryReady(ctx context.Context) error {
	select {
	case <-s.hist.ready:
	case <-ctx.Done():
		return fmt.Errorf("history: %w", ctx.Err())
	}
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	return s.hist.buildErr
}

// History returns the commits that touched deployment id's file, oldest
// first.
func (s *Store) History(ctx context.Context, id string) ([]HistoryEntry, error) {
	return s.hist.get(ctx, id, s.readCommit)
}

// ReadBlob returns the content of a file's blob.
func (s *Store) ReadBlob(h plumbing.Hash) ([]byte, error) {
	return s.objs.read(plumbing.BlobObject, h)
}

var errNotRunning = errors.New("gitstore: committer stopped")

// Diff lists the files that differ between the trees of two commits (a zero
// hash is the empty repository). It reads only the subtrees that differ.
func (s *Store) Diff(from, to plumbing.Hash) ([]FileChange, error) {
	var trees [2]plumbing.Hash
	for i, c := range []plumbing.Hash{from, to} {
		if c.IsZero() {
			continue
		}
		info, err := s.readCommit(c)
		if err != nil {
			return nil, err
		}
		trees[i] = info.tree
	}
	return diffTrees(s.trees, trees[0], trees[1])
}

// Ref returns the hash a ref other than the branch points at (for example
// the agent's refs/mengi/agent/synced); zero when it does not exist.
func (s *Store) Ref(name string) (plumbing.Hash, error) {
	return refFile{gitDir: s.dir, name: plumbing.ReferenceName(name)}.read()
}

// SetRef moves a ref other than the branch from old to new, with git's lock
// protocol, durably; ErrRefChanged when it no longer holds old.
func (s *Store) SetRef(name string, old, new plumbing.Hash) error {
	if !strings.HasPrefix(name, "refs/") || name == s.ref.name.String() {
		return fmt.Errorf("set ref %q: not a ref gitstore may move", name)
	}
	v, err := refFile{gitDir: s.dir, name: plumbing.ReferenceName(name)}.prepare(new)
	if err != nil {
		return err
	}
	return v.swap(old)
}

// File is a file of the repository with its content.
type File struct {
	Path    string
	Content []byte
}

// Unkept returns the record files at the head that this store does not
// keep (Options.Holds): in a deployments repository, the users and
// clusters an earlier version kept there. Only users/ and the top of
// clusters/ are read, however many deployments there are.
func (s *Store) Unkept() ([]File, error) {
	s.mu.RLock()
	root := s.headTree
	s.mu.RUnlock()
	t, err := optTree(s.trees, root)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, dir := range []string{usersDir, clustersDir} {
		i, ok := t.find(dir, true)
		if !ok {
			continue
		}
		sub, err := s.trees.tree(t.entry(i).hash)
		if err != nil {
			return nil, err
		}
		for j := range sub.len() {
			e := sub.entry(j)
			p := dir + "/" + e.name
			if e.isTree() || fileKind(p) == "" || s.kindOf(p) != "" {
				continue
			}
			data, err := s.objs.read(plumbing.BlobObject, e.hash)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			out = append(out, File{Path: p, Content: data})
		}
	}
	return out, nil
}
