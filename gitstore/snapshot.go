package gitstore

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/schema"
)

// The index snapshot. Opening a repository reads and parses every record
// file of the head tree: at 50,000 deployments 5-7 s, mostly YAML parsing
// and schema validation, and the process's peak memory. So the store
// saves its index in the git directory when it closes (snapshotFileName),
// and the next start loads that and takes in only the files that changed
// since (the tree diff a push goes through). The snapshot is a cache: it
// has a checksum and names the commit it describes; missing, damaged, or
// naming a commit that cannot be read (a force push and gc), the start
// parses every file, as it does on a repository's first start.
//
// Format: the line "mengi-index 2\n"; the digest of the packed layout and
// of the kinds of record kept (snapshotLayout, 20 bytes); the commit (20
// bytes); the number of records (uvarint); for each, its encoding
// (uvarint length, bytes): the path (uvarint length, bytes), the blob (20
// bytes), a kind byte and the value: a packed deployment, or the JSON of a
// cluster or user; the SHA-1 of everything before (20 bytes). Files that were not valid are saved with
// kind snapNone and parsed again at load, so a loaded index is the one
// parsing every file would give.

// snapshotFileName is the snapshot's name in the git directory.
const snapshotFileName = "mengi-index"

const snapshotMagic = "mengi-index 2\n"

// tmpSnapshotPrefix names the snapshot while it is written.
const tmpSnapshotPrefix = "tmp_mengi_index_"

// Kinds of a snapshot record.
const (
	snapNone       = iota // parse the file again
	snapDeployment        // a packed deployment
	snapCluster           // a cluster's JSON
	snapUser              // a user's JSON
)

// encodeSnapshotRecord appends r's snapshot encoding to b.
func encodeSnapshotRecord(b []byte, r *Record) ([]byte, error) {
	b = appendString(b, r.Path)
	b = append(b, r.data[:len(plumbing.Hash{})]...)
	var value any
	switch {
	case r.Err() != nil:
		// Files that were not valid (or lost a duplicate id) go by path
		// and blob only, to be parsed again.
		return append(b, snapNone), nil
	case r.HasDeployment():
		return append(append(b, snapDeployment), r.packed()...), nil
	case r.Cluster() != nil:
		b, value = append(b, snapCluster), r.Cluster()
	case r.User() != nil:
		b, value = append(b, snapUser), r.User()
	default:
		return append(b, snapNone), nil
	}
	j, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.Path, err)
	}
	return append(b, j...), nil
}

// writeSnapshot saves records as the index of commit head.
func writeSnapshot(gitDir string, layout [sha1.Size]byte, head plumbing.Hash, records []*Record) error {
	return writeCacheFile(filepath.Join(gitDir, snapshotFileName), tmpSnapshotPrefix, func(w *bufio.Writer) error {
		var buf [binary.MaxVarintLen64]byte
		w.WriteString(snapshotMagic)
		w.Write(layout[:])
		w.Write(head[:])
		w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(records)))])
		var b []byte
		for _, r := range records {
			var err error
			if b, err = encodeSnapshotRecord(b[:0], r); err != nil {
				return err
			}
			w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
			w.Write(b)
		}
		return nil
	})
}

var errSnapshot = errors.New("not a valid index snapshot")

// errSnapshotOutdated is a snapshot another version of the store wrote
// (another format, or another deployment schema): expected once after an
// upgrade.
var errSnapshotOutdated = fmt.Errorf("%w: written by another version", errSnapshot)

// readSnapshot streams the snapshot: it calls useHead with the commit the
// snapshot describes (an error from it stops the read), then each with
// every record's encoding, and checks the checksum at the end: the
// records only count when it returns nil. errors.Is(err, os.ErrNotExist)
// when there is no snapshot.
func readSnapshot(gitDir string, layoutWant [sha1.Size]byte, useHead func(plumbing.Hash) error, each func([]byte)) error {
	f, err := os.Open(filepath.Join(gitDir, snapshotFileName))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size() - sha1.Size
	if size < int64(len(snapshotMagic)+2*len(plumbing.Hash{})) {
		return fmt.Errorf("%w: too short", errSnapshot)
	}
	sum := sha1.New()
	r := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, size), sum), 256<<10)
	magic := make([]byte, len(snapshotMagic))
	var head plumbing.Hash
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		if bytes.HasPrefix(magic, []byte("mengi-index ")) {
			return fmt.Errorf("%w (format %q)", errSnapshotOutdated, bytes.TrimSpace(magic[len("mengi-index "):]))
		}
		return fmt.Errorf("%w: unknown format", errSnapshot)
	}
	var layout [sha1.Size]byte
	if _, err := io.ReadFull(r, layout[:]); err != nil || layout != layoutWant {
		return fmt.Errorf("%w (another deployment schema or record selection)", errSnapshotOutdated)
	}
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return fmt.Errorf("%w: %v", errSnapshot, err)
	}
	if err := useHead(head); err != nil {
		return err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(size) {
		return fmt.Errorf("%w: record count", errSnapshot)
	}
	for range n {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > uint64(size) {
			return fmt.Errorf("%w: record length", errSnapshot)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("%w: %v", errSnapshot, err)
		}
		each(b)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes", errSnapshot)
	}
	var want [sha1.Size]byte
	if _, err := io.ReadFull(f, want[:]); err != nil || !bytes.Equal(sum.Sum(nil), want[:]) {
		return fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	return nil
}

// snapshotLayout identifies what a snapshot's records are: the packed
// deployment layout, and which kinds of record the store keeps (a
// snapshot of every kind must not fill a store that keeps deployments
// only, nor the other way round).
func (s *Store) snapshotLayout() [sha1.Size]byte {
	layout := packLayout()
	if s.opts.Holds == HoldsAll {
		return layout
	}
	return sha1.Sum(append(layout[:], byte(s.opts.Holds)))
}

// loadSnapshot fills the index from the snapshot, if there is one
// describing a commit that can be read, and returns that commit and its
// tree and true; false when the caller must parse every file instead.
func (s *Store) loadSnapshot() (commit, tree plumbing.Hash, ok bool) {
	err := s.fillFromSnapshot(func(head plumbing.Hash) error {
		c, err := s.readCommit(head)
		if err != nil {
			return err
		}
		commit, tree = head, c.tree
		return nil
	})
	if err == nil {
		return commit, tree, true
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
	case errors.Is(err, errSnapshotOutdated):
		s.log.Info("index snapshot from another version; parsing every file", "err", err)
	default:
		s.log.Warn("index snapshot unusable; parsing every file", "err", err)
	}
	s.idx = newIndex()
	return plumbing.ZeroHash, plumbing.ZeroHash, false
}

// fillFromSnapshot decodes the snapshot's records (a few workers in
// parallel, as they are read) into the index; files saved without a value
// are read and parsed again.
func (s *Store) fillFromSnapshot(useHead func(plumbing.Hash) error) error {
	return fillIndex(s.idx, func(jobs chan<- []byte) error {
		return readSnapshot(s.dir, s.snapshotLayout(), useHead, func(b []byte) { jobs <- b })
	}, s.snapshotRecord)
}

// fillIndex loads records into ix in bulk: produce sends work to jobs, a
// few workers turn each piece into a record with parse, and one goroutine
// adds the records to the index. It returns produce's error, or else the
// first of parse's.
func fillIndex[T any](ix *index, produce func(jobs chan<- T) error, parse func(T) (*Record, error)) error {
	jobs := make(chan T, 256)
	parsed := make(chan *Record, 256)
	var failed error
	var failOnce sync.Once
	var workers sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				r, err := parse(j)
				if err != nil {
					failOnce.Do(func() { failed = err })
					continue
				}
				parsed <- r
			}
		}()
	}
	collected := make(chan struct{})
	ix.bulk = true
	go func() {
		defer close(collected)
		for r := range parsed {
			ix.set(r.Path, r)
		}
	}()
	err := produce(jobs)
	close(jobs)
	workers.Wait()
	close(parsed)
	<-collected
	ix.endBulk()
	if err != nil {
		return err
	}
	return failed
}

// snapshotRecord turns one saved record back into the record parsing its
// file gives.
func (s *Store) snapshotRecord(b []byte) (*Record, error) {
	// The path and a packed deployment share one string.
	rec := string(b)
	u := unpacker{s: rec}
	p := u.string()
	if len(b)-u.off < len(plumbing.Hash{})+1 {
		return nil, fmt.Errorf("%w: short record", errSnapshot)
	}
	var blob plumbing.Hash
	copy(blob[:], b[u.off:])
	u.off += len(blob)
	kind, value := b[u.off], b[u.off+1:]
	if u.err != nil || s.kindOf(p) == "" || blob.IsZero() {
		return nil, fmt.Errorf("%w: record %q", errSnapshot, p)
	}
	switch kind {
	case snapDeployment:
		if s.kindOf(p) != "deployment" {
			return nil, fmt.Errorf("%w: record %q", errSnapshot, p)
		}
		// The record's data is the snapshot entry's end: blob, kind and
		// packed deployment, in the string that holds the path too.
		r := recordOf(p, rec[u.off-len(blob):])
		d, err := unpackDeployment(r.packed(), p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshot, err)
		}
		r.setPhase(d.Phase())
		return r, nil
	case snapCluster:
		var c *schema.Cluster
		if err := json.Unmarshal(value, &c); err != nil || c == nil {
			return nil, fmt.Errorf("%w: record %q", errSnapshot, p)
		}
		r := newRecord(p, blob, snapCluster, "")
		r.other = &recordOther{cluster: c}
		return r, nil
	case snapUser:
		var usr *schema.User
		if err := json.Unmarshal(value, &usr); err != nil || usr == nil {
			return nil, fmt.Errorf("%w: record %q", errSnapshot, p)
		}
		r := newRecord(p, blob, snapUser, "")
		r.other = &recordOther{user: usr}
		return r, nil
	case snapNone:
	default:
		return nil, fmt.Errorf("%w: record %q: kind %d", errSnapshot, p, kind)
	}
	data, err := s.objs.read(plumbing.BlobObject, blob)
	if err != nil {
		return nil, err
	}
	return parseRecord(p, blob, data, nil), nil
}

// saveSnapshot writes the snapshot of the index at the head.
func (s *Store) saveSnapshot() {
	s.mu.RLock()
	head := s.head
	records := make([]*Record, 0, len(s.idx.files))
	for _, r := range s.idx.files {
		records = append(records, r)
	}
	s.mu.RUnlock()
	if head.IsZero() || head == s.snapshotHead {
		return
	}
	if err := writeSnapshot(s.dir, s.snapshotLayout(), head, records); err != nil {
		s.log.Warn("saving the index snapshot failed; the next start parses every file", "err", err)
		return
	}
	s.snapshotHead = head
}

// writeCacheFile replaces the file at path atomically (a temporary file
// named tmpPrefix… renamed over it) with what encode writes and its
// SHA-1. It is not fsynced: after a crash, a torn file fails its checksum.
func writeCacheFile(path, tmpPrefix string, encode func(w *bufio.Writer) error) error {
	name := filepath.Base(path)
	tmp, err := os.CreateTemp(filepath.Dir(path), tmpPrefix)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	sum := sha1.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 64<<10)
	err = encode(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		_, err = tmp.Write(sum.Sum(nil))
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
