package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/schema"
)

// Tests of damaged repositories (issue 18): packs and indexes cut short,
// changed or missing, made by the store and by git, found at start or
// appearing while the store runs. The store refuses to start with a
// message that names the file, or serves what is intact, and never serves
// content that is not the object's.

// damagedClusters are the clusters of the damaged-repository tests.
var damagedClusters = []string{testCluster, "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"}

// testRepos holds the repositories made once per test binary;
// RemoveTestRepos removes it.
var testRepos = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "gitstore-damaged-") })

// RemoveTestRepos removes the repositories the tests made once (called by
// TestMain).
func RemoveTestRepos() {
	if dir, err := testRepos(); err == nil {
		os.RemoveAll(dir)
	}
}

// historyRepo is a repository made through the store, once: 300
// deployments created ten to a commit by 6 writers (so in batches of
// several commits), then 31 updates one by one (app-042's first),
// closed (its index snapshot and history file saved). Tests work on
// copies (copyRepo).
var historyRepo = sync.OnceValues(func() (string, error) {
	root, err := testRepos()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "store")
	s, err := Open(dir, Options{CompactAfter: -1})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < 30; c += 6 {
				if _, err := s.Apply(context.Background(), createTen(c*10)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return "", err
	}
	// app-042 first: the tests damage its pack, which must not hold the
	// head commit.
	updates := []int{42}
	for i := range 30 {
		updates = append(updates, i)
	}
	for _, i := range updates {
		if _, err := s.Apply(context.Background(), updateMutation(damagedDeployment(i, fmt.Sprintf("nginx:1.%d", i)))); err != nil {
			return "", err
		}
	}
	return dir, s.Close()
})

// createTen creates deployments first to first+9 in one commit.
func createTen(first int) Mutation {
	return func(v *View) (*Commit, error) {
		c := &Commit{Author: testAuthor, Message: fmt.Sprintf("deployments %d-%d: create", first, first+9)}
		for i := first; i < first+10; i++ {
			d := damagedDeployment(i, "")
			content, err := schema.EncodeFile(d)
			if err != nil {
				return nil, err
			}
			c.Changes = append(c.Changes, Change{Path: DeploymentPath(d.Spec.ClusterID, d.Spec.Name), Content: content, Value: d})
		}
		return c, nil
	}
}

// damagedDeployment is deployment i of the history repository, with image
// img (its first one when empty).
func damagedDeployment(i int, img string) *schema.Deployment {
	d := newDeployment(i, damagedClusters[i%3], fmt.Sprintf("app-%03d", i))
	if img != "" {
		d.Spec.DockerImage = &img
	}
	return d
}

// gitRepo returns the history repository repacked by git: "git" (`git
// repack -a -d`, compressed, blobs stored as deltas) or "git0" (the same
// without compression: zlib's stored blocks, whose bytes can be changed
// so that they still inflate).
func gitRepo(t *testing.T, kind string) string {
	t.Helper()
	v, _ := gitRepos.LoadOrStore(kind, sync.OnceValues(func() (string, error) {
		src, err := historyRepo()
		if err != nil {
			return "", err
		}
		root, _ := testRepos()
		dir := filepath.Join(root, kind)
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			return "", err
		}
		args := []string{"-C", dir, "repack", "-a", "-d", "-q"}
		if kind == "git0" {
			args = []string{"-C", dir, "-c", "pack.compression=0", "repack", "-a", "-d", "-q", "-F"}
		}
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("git repack: %v: %s", err, out)
		}
		return dir, nil
	}))
	dir, err := v.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var gitRepos sync.Map

// baseRepo returns the repository of kind "store", "git" or "git0".
func baseRepo(t *testing.T, kind string) string {
	t.Helper()
	requireGit(t)
	if kind != "store" {
		return gitRepo(t, kind)
	}
	dir, err := historyRepo()
	if err != nil {
		t.Fatalf("making the repository: %v", err)
	}
	return dir
}

// requireGit fails the test when git is missing: these tests check what
// git makes and says.
func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("these tests need git: %v", err)
	}
}

// copyRepo copies the repository src to a new folder and returns it.
func copyRepo(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// repoTruth is what git reads in a repository: the head, and each file's
// blob and content.
type repoTruth struct {
	head  plumbing.Hash
	blobs map[string]plumbing.Hash
	data  map[plumbing.Hash][]byte
}

func readRepoTruth(t *testing.T, dir string) repoTruth {
	t.Helper()
	tr := repoTruth{head: plumbing.NewHash(runGit(t, dir, "rev-parse", "main")), blobs: map[string]plumbing.Hash{}, data: map[plumbing.Hash][]byte{}}
	var list strings.Builder
	for _, l := range strings.Split(runGit(t, dir, "ls-tree", "-r", "main"), "\n") {
		f := strings.Fields(l)
		tr.blobs[f[3]] = plumbing.NewHash(f[2])
		list.WriteString(f[2] + "\n")
	}
	cmd := exec.Command("git", "-C", dir, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(list.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git cat-file: %v", err)
	}
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		f := strings.Fields(line)
		n, _ := strconv.Atoi(f[2])
		data := make([]byte, n+1)
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		tr.data[plumbing.NewHash(f[0])] = data[:n]
	}
	return tr
}

// pathOf returns the path of deployment i's file.
func (tr repoTruth) pathOf(i int) string {
	d := damagedDeployment(i, "")
	return DeploymentPath(d.Spec.ClusterID, d.Spec.Name)
}

// holder returns the pack (pack-<sum>) that lists h in the repository,
// and h's offset there.
func holder(t *testing.T, dir string, h plumbing.Hash) (string, uint64) {
	t.Helper()
	pairs, _, _ := listPacks(dir)
	for _, name := range pairs {
		v, err := readIdx(dir, name)
		if err != nil {
			continue
		}
		if i, ok := v.find(h); ok {
			return name, v.offset(i)
		}
	}
	t.Fatalf("no pack holds %s", h)
	return "", 0
}

// smallestHolder is holder among several packs: the one with the fewest
// objects.
func smallestHolder(t *testing.T, dir string, h plumbing.Hash) (string, uint64) {
	t.Helper()
	pairs, _, _ := listPacks(dir)
	best, off, n := "", uint64(0), -1
	for _, name := range pairs {
		v, err := readIdx(dir, name)
		if err != nil {
			continue
		}
		if i, ok := v.find(h); ok && (n < 0 || v.n < n) {
			best, off, n = name, v.offset(i), v.n
		}
	}
	if best == "" {
		t.Fatalf("no pack holds %s", h)
	}
	return best, off
}

func packPath(dir, name, ext string) string { return filepath.Join(packDir(dir), name+ext) }

func truncateFile(t *testing.T, path string, size func(int64) int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if err := os.Truncate(path, size(fi.Size())); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the byte at offset at (from the end when negative).
func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += int64(len(b))
	}
	b[at] ^= 0xff
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

// rewriteStored changes the content of the whole object stored at off in
// the pack file (one zlib stream of one stored deflate block, as the store
// and `git -c pack.compression=0` write small objects): from becomes to
// (of the same length), and the stream's Adler-32 is fixed, so that the
// entry still inflates, to other content.
func rewriteStored(t *testing.T, path string, off uint64, from, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	typ, size, n := entrySize(b[off:])
	z := int(off) + n
	if typ < packCommit || typ > packTag || b[z] != 0x78 || b[z+2]&0x07 != 0x01 {
		t.Fatalf("entry at %d: type %d, zlib %x: not one stored block", off, typ, b[z:z+3])
	}
	blk := z + 2
	if l := int(binary.LittleEndian.Uint16(b[blk+1:])); l != int(size) {
		t.Fatalf("entry at %d: a block of %d bytes for %d", off, l, size)
	}
	content := b[blk+5 : blk+5+int(size)]
	i := bytes.Index(content, []byte(from))
	if i < 0 || len(from) != len(to) {
		t.Fatalf("entry at %d does not hold %q", off, from)
	}
	copy(content[i:], to)
	binary.BigEndian.PutUint32(b[blk+5+int(size):], adler32.Checksum(content))
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

// reseal makes pack name whole again after its bytes were changed: a new
// checksum, CRCs and index (listing the same object ids), and the name
// that goes with them. It returns the new name. The pack then passes every
// check of its own, and still holds content that is not its objects'.
func reseal(t *testing.T, dir, name string) string {
	t.Helper()
	v, err := readIdx(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(packPath(dir, name, ".pack"))
	if err != nil {
		t.Fatal(err)
	}
	body := b[:len(b)-20]
	sum := sha1.Sum(body)
	ends := make([]uint64, 0, v.n)
	for i := range v.n {
		ends = append(ends, v.offset(i))
	}
	slices.Sort(ends)
	idx := indexOf(v.n, func(i int) (plumbing.Hash, uint32, uint32) {
		off := v.offset(i)
		j, _ := slices.BinarySearch(ends, off)
		end := uint64(len(body))
		if j+1 < len(ends) {
			end = ends[j+1]
		}
		return plumbing.Hash(v.id(i)), crc32.ChecksumIEEE(body[off:end]), uint32(off)
	}, sum)
	fresh := fmt.Sprintf("pack-%x", sum)
	os.Remove(packPath(dir, name, ".pack"))
	os.Remove(packPath(dir, name, ".idx"))
	if err := os.WriteFile(packPath(dir, fresh, ".idx"), idx, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packPath(dir, fresh, ".pack"), append(body, sum[:]...), 0o444); err != nil {
		t.Fatal(err)
	}
	return fresh
}

// openDamaged opens dir, which must be refused as damaged, and returns the
// error, checking it is one line that names file and says what to do.
func openDamaged(t *testing.T, dir, file string, says ...string) *DamagedError {
	t.Helper()
	s, err := Open(dir, Options{CompactAfter: -1})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a damaged repository: no error")
	}
	var de *DamagedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open: %v (%T), want a *DamagedError", err, err)
	}
	msg := err.Error()
	for _, want := range append([]string{"repository " + dir + " is damaged: ", file, "does not start", "git -C " + dir}, says...) {
		if !strings.Contains(msg, want) {
			t.Errorf("Open: %q\ndoes not say %q", msg, want)
		}
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("Open: the message is not one line: %q", msg)
	}
	return de
}

// servesTruth checks that every record the store has, and the blobs it
// reads (of a tenth of the files, app-042's among them), are what git
// reads.
func servesTruth(t *testing.T, s *Store, tr repoTruth) {
	t.Helper()
	wrong := 0
	s.Read(func(v *View) {
		for p, blob := range tr.blobs {
			r := v.Record(p)
			if r == nil || r.Blob() != blob {
				t.Errorf("%s: record %v, want blob %s", p, r, blob)
				wrong++
				continue
			}
			if want := parseRecord(p, blob, tr.data[blob], nil); want.packed() != r.packed() {
				t.Errorf("%s: the index holds another deployment than git's file", p)
				wrong++
			}
		}
	})
	for i := 2; i < 300; i += 10 {
		p := tr.pathOf(i)
		blob := tr.blobs[p]
		if wrong > 5 {
			return
		}
		data, err := s.ReadBlob(blob)
		if err != nil || !bytes.Equal(data, tr.data[blob]) {
			t.Errorf("%s: ReadBlob: %v, content right: %v", p, err, bytes.Equal(data, tr.data[blob]))
			wrong++
		}
	}
}

// TestOpenRefusesDamagedPack damages the pack holding the head commit, or
// the blob of one deployment, in a repository written by the store and in
// ones repacked by git, and opens it (with its index snapshot, so that
// nothing at start reads the damaged objects): the start is refused,
// naming the pack and saying what to do. Before, most of these opened:
// a pack cut in half or an uncompressed blob changed in place
// served the index and failed writes, or served another deployment than
// git's file (every deployment, when the byte was in a delta base).
func TestOpenRefusesDamagedPack(t *testing.T) {
	type damage struct {
		name    string
		kinds   []string
		says    string
		blob    bool // damage the blob of app-042 rather than the head commit's pack
		perform func(t *testing.T, path string, off uint64)
	}
	all := []string{"store", "git", "git0"}
	for _, d := range []damage{
		{"cut to half", all, "fails its checksum", false, func(t *testing.T, p string, _ uint64) {
			truncateFile(t, p, func(n int64) int64 { return n / 2 })
		}},
		{"cut to 5 bytes", all, "is cut short: 5 bytes", false, func(t *testing.T, p string, _ uint64) {
			truncateFile(t, p, func(int64) int64 { return 5 })
		}},
		{"emptied", all, "is empty (0 bytes)", false, func(t *testing.T, p string, _ uint64) {
			truncateFile(t, p, func(int64) int64 { return 0 })
		}},
		{"checksum cut", all, "fails its checksum", true, func(t *testing.T, p string, _ uint64) {
			truncateFile(t, p, func(n int64) int64 { return n - 10 })
		}},
		{"zlib stream changed", all, "fails its checksum", true, func(t *testing.T, p string, off uint64) {
			flipByte(t, p, int64(off)+12)
		}},
		{"blob changed, still inflating", []string{"store", "git0"}, "fails its checksum", true, func(t *testing.T, p string, off uint64) {
			rewriteStored(t, p, off, "nginx", "nginy")
		}},
	} {
		for _, kind := range d.kinds {
			t.Run(d.name+"/"+kind, func(t *testing.T) {
				base := baseRepo(t, kind)
				tr := readRepoTruth(t, base)
				dir := copyRepo(t, base)
				target := tr.head
				if d.blob {
					target = tr.blobs[tr.pathOf(42)]
					if kind == "git0" {
						// A blob stored whole (the base of others' deltas).
						target = wholeBlob(t, dir, tr)
					}
				}
				name, off := holder(t, dir, target)
				d.perform(t, packPath(dir, name, ".pack"), off)
				openDamaged(t, dir, "objects/pack/"+name+".pack", d.says, "of its objects are found nowhere else", "fsck --full", "restore")
			})
		}
	}
}

// wholeBlob returns a blob at the head that the git-repacked repository
// stores whole (not as a delta).
func wholeBlob(t *testing.T, dir string, tr repoTruth) plumbing.Hash {
	t.Helper()
	name, _ := holder(t, dir, tr.head)
	for _, l := range strings.Split(runGit(t, dir, "verify-pack", "-v", packPath(dir, name, ".idx")), "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[1] == "blob" {
			if h := plumbing.NewHash(f[0]); tr.data[h] != nil && bytes.Contains(tr.data[h], []byte("nginx")) {
				return h
			}
		}
	}
	t.Fatal("no blob stored whole")
	return plumbing.ZeroHash
}

// TestOpenRefusesDamagedIndex damages the index of the pack holding a
// blob: the start is refused naming the index, and the command the
// message gives (git index-pack) repairs it, after which the store serves
// what git reads. Before, any damaged index made every read fail, with
// go-git's words ("malformed IDX file", "unexpected EOF", "EOF").
func TestOpenRefusesDamagedIndex(t *testing.T) {
	for _, kind := range []string{"store", "git"} {
		for _, d := range []struct {
			name, says string
			perform    func(t *testing.T, path string)
		}{
			{"byte changed", "fails its checksum", func(t *testing.T, p string) { flipByte(t, p, -100) }},
			{"cut to half", "is cut short", func(t *testing.T, p string) {
				truncateFile(t, p, func(n int64) int64 { return n / 2 })
			}},
			{"emptied", "is empty (0 bytes)", func(t *testing.T, p string) {
				truncateFile(t, p, func(int64) int64 { return 0 })
			}},
		} {
			t.Run(d.name+"/"+kind, func(t *testing.T) {
				base := baseRepo(t, kind)
				tr := readRepoTruth(t, base)
				dir := copyRepo(t, base)
				name, _ := holder(t, dir, tr.blobs[tr.pathOf(42)])
				d.perform(t, packPath(dir, name, ".idx"))
				hint := "remove objects/pack/" + name + ".idx and run `git -C " + dir + " index-pack objects/pack/" + name + ".pack`"
				openDamaged(t, dir, "objects/pack/"+name+".idx", d.says, "The pack itself is intact", hint)
				os.Remove(packPath(dir, name, ".idx"))
				runGit(t, dir, "index-pack", "objects/pack/"+name+".pack")
				s, err := Open(dir, Options{CompactAfter: -1})
				if err != nil {
					t.Fatalf("Open after %s: %v", hint, err)
				}
				defer s.Close()
				servesTruth(t, s, tr)
			})
		}
	}
}

// TestPackWithoutIndex removes the index of the pack holding a blob, as a
// copy that missed it would. The pack is kept (before, the store deleted
// it after a second: a copy's only copy of those objects); a start that
// needs its objects is refused naming it and `git index-pack`, which
// repairs it; a start from the index snapshot serves, and a read of the
// blob names the pack.
func TestPackWithoutIndex(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	blob := tr.blobs[tr.pathOf(42)]
	t.Run("needed at start", func(t *testing.T) {
		dir := copyRepo(t, base)
		name, _ := holder(t, dir, blob)
		os.Remove(packPath(dir, name, ".idx"))
		os.Remove(filepath.Join(dir, snapshotFileName)) // every file is read
		hint := "git -C " + dir + " index-pack objects/pack/" + name + ".pack"
		openDamaged(t, dir, "objects/pack/"+name+".pack", "has no index", hint)
		if _, err := os.Stat(packPath(dir, name, ".pack")); err != nil {
			t.Fatalf("the pack without its index was removed: %v", err)
		}
		runGit(t, dir, "index-pack", "objects/pack/"+name+".pack")
		s := openStore(t, dir)
		servesTruth(t, s, tr)
	})
	t.Run("read later", func(t *testing.T) {
		dir := copyRepo(t, base)
		name, _ := holder(t, dir, blob)
		os.Remove(packPath(dir, name, ".idx"))
		old := time.Now().Add(-time.Hour)
		os.Chtimes(packPath(dir, name, ".pack"), old, old)
		s, logs := openLogged(t, dir)
		if !strings.Contains(logs.String(), "a pack without its index is left out") || !strings.Contains(logs.String(), name+".pack") {
			t.Errorf("no warning names the pack without its index:\n%s", logs)
		}
		_, err := s.ReadBlob(blob)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "objects/pack/"+name+".pack has no index") {
			t.Errorf("ReadBlob: %v", err)
		}
		if _, err := os.Stat(packPath(dir, name, ".pack")); err != nil {
			t.Fatalf("the pack without its index was removed: %v", err)
		}
	})
}

// TestIndexWithoutPack removes the pack holding a blob and keeps its
// index: the start that needs the blob is refused saying the pack is
// missing; one from the snapshot serves and names it when the blob is read.
func TestIndexWithoutPack(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	blob := tr.blobs[tr.pathOf(42)]
	dir := copyRepo(t, base)
	name, _ := holder(t, dir, blob)
	os.Remove(packPath(dir, name, ".pack"))
	s, err := Open(dir, Options{CompactAfter: -1})
	if err != nil {
		t.Fatalf("Open from the snapshot: %v", err)
	}
	_, err = s.ReadBlob(blob)
	s.Close()
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "objects/pack/"+name+".pack, which holds it, is missing") {
		t.Errorf("ReadBlob: %v", err)
	}
	os.Remove(filepath.Join(dir, snapshotFileName))
	openDamaged(t, dir, "objects/pack/"+name+".pack", "is missing (its index objects/pack/"+name+".idx lists the object)")
}

// TestDamagedPackIntactElsewhereIsLeftOut: after `git repack -a` (which
// keeps the old packs) a damaged old pack holds nothing the new one does
// not: the store starts, names it in a warning, serves what git reads from
// the intact packs, and takes writes.
func TestDamagedPackIntactElsewhereIsLeftOut(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	dir := copyRepo(t, base)
	runGit(t, dir, "repack", "-a", "-q")
	// The store's pack of the blob, not the one git made of everything.
	name, off := smallestHolder(t, dir, tr.blobs[tr.pathOf(42)])
	rewriteStored(t, packPath(dir, name, ".pack"), off, "nginx", "nginy")
	s, logs := openLogged(t, dir)
	if !strings.Contains(logs.String(), "damaged pack left out") || !strings.Contains(logs.String(), name+".pack") {
		t.Errorf("no warning names the damaged pack:\n%s", logs)
	}
	servesTruth(t, s, tr)
	d := damagedDeployment(42, "nginx:after")
	mustApply(t, s, updateMutation(d))
	s.Close()
	if got := runGit(t, dir, "show", "main:"+tr.pathOf(42)); !strings.Contains(got, "nginx:after") {
		t.Errorf("the write after is not on the branch:\n%s", got)
	}
}

// TestRollUpLeavesDamagedPacksOut: a damaged pack left out (its objects
// are intact elsewhere) is no candidate for git's roll-up of packs, which
// would otherwise copy what git reads of it and delete the file the
// warning names, or fail on it at every roll-up.
func TestRollUpLeavesDamagedPacksOut(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	dir := copyRepo(t, base)
	runGit(t, dir, "repack", "-a", "-q")
	name, off := smallestHolder(t, dir, tr.blobs[tr.pathOf(42)])
	rewriteStored(t, packPath(dir, name, ".pack"), off, "nginx", "nginy")
	packOthers(t, dir, 4, 3) // four small packs of others: something to roll up
	s, logs := openLogged(t, dir)
	if !slices.Contains(pickRollup(rollupCandidates(dir, s.own.snapshot())), name) {
		t.Fatalf("the damaged pack would not be rolled up anyway: %v", pickRollup(rollupCandidates(dir, s.own.snapshot())))
	}
	if picks := s.rollupPicks(); len(picks) == 0 || slices.Contains(picks, name) {
		t.Fatalf("roll-up picks %v (the damaged pack is %s)", picks, name)
	}
	s.rollUp(context.Background())
	if _, err := os.Stat(packPath(dir, name, ".pack")); err != nil {
		t.Errorf("the damaged pack is gone after the roll-up: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "packs rolled up by git") || strings.Contains(l, "rolling up packs with git failed") {
		t.Errorf("the roll-up did not go as planned:\n%s", l)
	}
	servesTruth(t, s, tr)
}

// TestObjectsAreHashedOnRead: a pack that passes every check of its own
// (checksum, index) but holds content that is not its objects' (a blob
// changed, the pack and its index then made whole again, as a tool
// rewriting packs could) is caught when the object is read: the start is
// refused, naming the object and the pack; from the snapshot, the store
// starts and the read is an error, never the other content. Before, the
// store served the changed deployment; in a repository repacked by git,
// changing one blob changed every deployment stored as a delta of it.
func TestObjectsAreHashedOnRead(t *testing.T) {
	for _, kind := range []string{"store", "git0"} {
		t.Run(kind, func(t *testing.T) {
			base := baseRepo(t, kind)
			tr := readRepoTruth(t, base)
			dir := copyRepo(t, base)
			blob := tr.blobs[tr.pathOf(42)]
			if kind == "git0" {
				blob = wholeBlob(t, dir, tr)
			}
			name, off := holder(t, dir, blob)
			rewriteStored(t, packPath(dir, name, ".pack"), off, "nginx", "nginy")
			name = reseal(t, dir, name)
			s, err := Open(dir, Options{CompactAfter: -1})
			if err != nil {
				t.Fatalf("Open from the snapshot: %v", err)
			}
			data, err := s.ReadBlob(blob)
			if data != nil || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "its content hashes to") ||
				!strings.Contains(err.Error(), "objects/pack/"+name+".pack, which holds it, passes its checksum: it was written with wrong content") {
				t.Errorf("ReadBlob of the changed blob: %q, %v", data, err)
			}
			s.Close()
			os.Remove(filepath.Join(dir, snapshotFileName))
			// In git's pack the blobs stored as deltas of the changed one
			// are wrong too: the first one read is named.
			openDamaged(t, dir, "objects/pack/"+name+".pack", "cannot be read (its content hashes to", "passes its checksum: it was written with wrong content")
		})
	}
}

// externalPack makes, in a clone of repo, a commit that changes
// app-042's image to nginx:9.99, and packs its new objects without
// compression (each in one stored block). It returns the pack's path
// without extension, the commit and the new blob.
func externalPack(t *testing.T, repo, path string) (stem string, commit, blob plumbing.Hash) {
	t.Helper()
	work := t.TempDir()
	git := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", work}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=E", "GIT_AUTHOR_EMAIL=e@example.com", "GIT_COMMITTER_NAME=E", "GIT_COMMITTER_EMAIL=e@example.com")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("", "clone", "-q", repo, ".")
	content, err := os.ReadFile(filepath.Join(work, path))
	if err != nil {
		t.Fatal(err)
	}
	content = bytes.Replace(content, []byte("nginx:1.42"), []byte("nginx:9.99"), 1)
	os.WriteFile(filepath.Join(work, path), content, 0o644)
	git("", "commit", "-q", "-am", "external")
	commit = plumbing.NewHash(git("", "rev-parse", "HEAD"))
	blob = plumbing.NewHash(git("", "rev-parse", "HEAD:"+path))
	sum := git(commit.String()+"\n^HEAD~1\n", "-c", "pack.compression=0", "pack-objects", "--revs", filepath.Join(work, "ext"))
	return filepath.Join(work, "ext-"+sum), commit, blob
}

// copyInPack copies the pack at stem (.pack and .idx) into the repository
// (index first, as a careful tool does) and returns its name there.
func copyInPack(t *testing.T, dir, stem string) string {
	t.Helper()
	name := filepath.Base(stem)
	if rest, ok := strings.CutPrefix(name, "ext-"); ok {
		name = "pack-" + rest
	}
	for _, ext := range []string{".idx", ".pack"} {
		data, err := os.ReadFile(stem + ext)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(packPath(dir, name+".tmp", ext), data, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(packPath(dir, name+".tmp", ext), packPath(dir, name, ext)); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// moveBranch points main at commit, as a push would, without git's checks.
func moveBranch(t *testing.T, dir string, commit plumbing.Hash) {
	t.Helper()
	ref := filepath.Join(dir, "refs", "heads", "main")
	if err := os.WriteFile(ref+".new", []byte(commit.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ref+".new", ref); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedPackCopiedInWhileRunning: while the store runs, a pack that
// `git verify-pack` refuses is copied in and the branch moved to the
// commit it holds (a bad copy of a push). The store takes none of it in,
// keeps serving the head it had, and says which pack is damaged: in its
// log, in a read of the new blob, and in the error of a write (which needs
// the new head). Before, the blob changed in place was taken in and served
// as the deployment (nginx:8.99 where git's object says nginx:9.99), kept
// by the writes after it and by a restart.
func TestDamagedPackCopiedInWhileRunning(t *testing.T) {
	for _, d := range []struct {
		name    string
		perform func(t *testing.T, stem string, off uint64)
	}{
		{"blob changed, still inflating", func(t *testing.T, stem string, off uint64) {
			rewriteStored(t, stem+".pack", off, "nginx:9.99", "nginx:8.99")
		}},
		{"zlib stream changed", func(t *testing.T, stem string, off uint64) { flipByte(t, stem+".pack", int64(off)+30) }},
		{"cut to half", func(t *testing.T, stem string, _ uint64) {
			truncateFile(t, stem+".pack", func(n int64) int64 { return n / 2 })
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			base := baseRepo(t, "store")
			tr := readRepoTruth(t, base)
			dir := copyRepo(t, base)
			path := tr.pathOf(42)
			stem, commit, blob := externalPack(t, dir, path)
			name := "pack-" + strings.TrimPrefix(filepath.Base(stem), "ext-")
			v, err := parseIdxFile(stem + ".idx")
			if err != nil {
				t.Fatal(err)
			}
			i, _ := v.find(blob)
			d.perform(t, stem, v.offset(i))
			if out, err := exec.Command("git", "verify-pack", stem+".idx").CombinedOutput(); err == nil {
				t.Fatalf("git verify-pack accepts the damaged pack:\n%s", out)
			}
			logs := &syncBuffer{}
			s, err := Open(dir, Options{CompactAfter: -1, PollInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			copyInPack(t, dir, stem)
			moveBranch(t, dir, commit)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "reading external change failed") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if l := logs.String(); !strings.Contains(l, "reading external change failed") || !strings.Contains(l, name+".pack") {
				t.Errorf("the log does not name the damaged pack:\n%s", l)
			}
			if s.Head() != tr.head {
				t.Errorf("the store took in the damaged commit: head %s", s.Head())
			}
			servesTruth(t, s, tr)
			data, err := s.ReadBlob(blob)
			if data != nil || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "objects/pack/"+name+".pack, which holds it, ") {
				t.Errorf("ReadBlob of the damaged blob: %q, %v", data, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.Apply(ctx, updateMutation(damagedDeployment(7, "nginx:after"))); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), name+".pack") {
				t.Errorf("a write on the damaged head: %v", err)
			}
		})
	}
}

// parseIdxFile reads and checks the pack index at path.
func parseIdxFile(path string) (idxView, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return idxView{}, err
	}
	return parseIdx(b)
}

// TestDamagedDuplicatePackIsLeftOutWhileRunning: a damaged copy of
// objects the repository already has (a pack of `git repack -a` with a
// blob's zlib stream changed) is copied in while the store runs. go-git
// picks either pack for a lookup; a read that hits the damaged one leaves
// it out and reads the object from the intact one: every read is right.
func TestDamagedDuplicatePackIsLeftOutWhileRunning(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	dir := copyRepo(t, base)
	blob := tr.blobs[tr.pathOf(42)]
	// The duplicate: git's pack of every object, made in a copy.
	other := copyRepo(t, base)
	runGit(t, other, "repack", "-a", "-d", "-q")
	name, off := holder(t, other, blob)
	flipByte(t, packPath(other, name, ".pack"), int64(off)+12)
	s, logs := openLogged(t, dir)
	copyInPack(t, dir, packPath(other, name, ""))
	for range 24 {
		// go-git looks the object up anew, in either pack.
		s.objs.reindex()
		s.objs.shrinkCache(runCacheSize)
		data, err := s.ReadBlob(blob)
		if err != nil || !bytes.Equal(data, tr.data[blob]) {
			t.Fatalf("ReadBlob: %v, content right: %v", err, bytes.Equal(data, tr.data[blob]))
		}
	}
	if !strings.Contains(logs.String(), "damaged pack left out") || !strings.Contains(logs.String(), name+".pack") {
		t.Errorf("no warning names the damaged pack (24 lookups never hit it?):\n%s", logs)
	}
	servesTruth(t, s, tr)
}

// TestDamagedIndexCopiedInWhileRunning: an intact pack with a damaged
// index is copied in while the store runs. go-git fails every lookup
// while one index it lists is damaged; the store leaves that pack out,
// names it in its log, and reads on. Before, every read failed from the
// next reload of the pack list on.
func TestDamagedIndexCopiedInWhileRunning(t *testing.T) {
	base := baseRepo(t, "store")
	tr := readRepoTruth(t, base)
	dir := copyRepo(t, base)
	stem, _, _ := externalPack(t, dir, tr.pathOf(42))
	truncateFile(t, stem+".idx", func(n int64) int64 { return n / 2 })
	s, logs := openLogged(t, dir)
	name := copyInPack(t, dir, stem)
	s.objs.reindex()
	servesTruth(t, s, tr)
	if !strings.Contains(logs.String(), "damaged pack index left out") || !strings.Contains(logs.String(), name+".idx") {
		t.Errorf("no error names the damaged index:\n%s", logs)
	}
}

// TestMergeRefusesDamagedPack: a merge checks the checksum of every pack
// it copies, so a pack of the store's changed on disk is never copied into
// a merged pack whose checksum is right (which would hide the damage from
// every later check but the objects' hashes).
func TestMergeRefusesDamagedPack(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("m%d", i))))
	}
	s.Close()
	names, _, _ := listPacks(dir)
	if len(names) < 3 {
		t.Fatalf("%d packs", len(names))
	}
	// A byte of a blob's content, which a merge copies without inflating.
	entries, err := readIndex(packPath(dir, names[1], ""))
	if err != nil {
		t.Fatal(err)
	}
	pack, _ := os.ReadFile(packPath(dir, names[1], ".pack"))
	at := int64(-1)
	for _, e := range entries {
		if typ, _ := entryHeader(pack[e.offset:]); typ == packBlob {
			at = int64(e.offset) + 12
			break
		}
	}
	if at < 0 {
		t.Fatal("no blob in the pack")
	}
	flipByte(t, packPath(dir, names[1], ".pack"), at)
	_, err = mergePacks(dir, names, false, newDeltaHints())
	if err == nil || !strings.Contains(err.Error(), names[1]+".pack is damaged") {
		t.Fatalf("merge of a damaged pack: %v", err)
	}
	if after, _, _ := listPacks(dir); len(after) != len(names) {
		t.Errorf("%d packs after the failed merge, %d before", len(after), len(names))
	}
}

// TestCheckPackFindsNothingInIntactRepositories: the checks at start
// pass every pack the store and git write.
func TestCheckPackFindsNothingInIntactRepositories(t *testing.T) {
	for _, kind := range []string{"store", "git", "git0"} {
		dir := baseRepo(t, kind)
		left, checked, err := verifyPacks(dir, slog.New(slog.DiscardHandler))
		pairs, _, _ := listPacks(dir)
		if err != nil || len(left) != 0 || len(checked) != len(pairs) {
			t.Errorf("%s: left out %v, checked %d of %d packs, %v", kind, left, len(checked), len(pairs), err)
		}
	}
}
