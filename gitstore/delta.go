package gitstore

import "encoding/binary"

// Deltas. A batch rewrites the same directories commit after commit (the
// clusters/ folder on every write, a busy cluster folder often), each time
// changing an entry or two of a tree that can hold hundreds. The pack
// stores such a tree as a Git delta against its previous version in the
// same pack: copy the common beginning, insert what changed, copy the
// common end. The delta is a few dozen bytes where the tree is tens of
// kilobytes, and making it needs no search.

// maxDeltaDepth bounds delta chains, as git's pack.depth does.
const maxDeltaDepth = 50

// deltaOf returns a Git delta that turns base into target, or nil when it
// would not be much smaller than target itself.
func deltaOf(base, target []byte) []byte {
	p := commonPrefix(base, target)
	s := commonSuffix(base[p:], target[p:])
	if len(target)-p-s+64 > len(target)/2 {
		return nil
	}
	return encodeDelta(len(base), p, s, target[p:len(target)-s])
}

// deltaOfTrees is deltaOf for trees. The chunks the two share are skipped
// without reading them, so its cost follows the size of the change.
func deltaOfTrees(base, target tree) []byte {
	if base.n == 0 || target.n == 0 {
		return nil
	}
	a, b := base.chunks, target.chunks
	p := sharedPrefix(a, b)
	s := min(sharedSuffix(a, b), min(base.size, target.size)-p)
	if target.size-p-s+64 > target.size/2 {
		return nil
	}
	mid := make([]byte, 0, target.size-p-s)
	pos := 0
	for _, c := range b {
		lo, hi := max(p-pos, 0), min(target.size-s-pos, len(c.data))
		if lo < hi {
			mid = append(mid, c.data[lo:hi]...)
		}
		pos += len(c.data)
	}
	return encodeDelta(base.size, p, s, mid)
}

// encodeDelta is the delta that copies the first p bytes of a base of
// baseSize bytes, inserts mid, then copies the base's last s bytes.
func encodeDelta(baseSize, p, s int, mid []byte) []byte {
	d := make([]byte, 0, len(mid)+len(mid)/127+32)
	d = appendDeltaSize(d, baseSize)
	d = appendDeltaSize(d, p+len(mid)+s)
	d = appendCopy(d, 0, p)
	for len(mid) > 0 {
		n := min(len(mid), 127)
		d = append(append(d, byte(n)), mid[:n]...)
		mid = mid[n:]
	}
	return appendCopy(d, baseSize-s, s)
}

// sameChunk tells whether two chunks are the same memory (one tree made
// from the other shares the chunks it did not edit).
func sameChunk(x, y []byte) bool {
	return len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
}

// sharedPrefix returns how many leading bytes the trees of chunks a and b
// share.
func sharedPrefix(a, b []treeChunk) int {
	p := 0
	ai, bi, ao, bo := 0, 0, 0, 0 // chunk, and offset in it
	for ai < len(a) && bi < len(b) {
		x, y := a[ai].data[ao:], b[bi].data[bo:]
		if ao == 0 && bo == 0 && sameChunk(x, y) {
			p += len(x)
			ai, bi = ai+1, bi+1
			continue
		}
		n := min(len(x), len(y))
		c := commonPrefix(x[:n], y[:n])
		p += c
		if c < n {
			return p
		}
		ao, bo = ao+n, bo+n
		if ao == len(a[ai].data) {
			ai, ao = ai+1, 0
		}
		if bo == len(b[bi].data) {
			bi, bo = bi+1, 0
		}
	}
	return p
}

// sharedSuffix returns how many trailing bytes the trees of chunks a and b
// share: sharedPrefix from the end.
func sharedSuffix(a, b []treeChunk) int {
	s := 0
	ai, bi := len(a)-1, len(b)-1
	ae, be := chunkLen(a, ai), chunkLen(b, bi) // what is left of chunks ai and bi
	for ai >= 0 && bi >= 0 {
		x, y := a[ai].data[:ae], b[bi].data[:be]
		if ae == len(a[ai].data) && be == len(b[bi].data) && sameChunk(x, y) {
			s += len(x)
			ai, bi = ai-1, bi-1
			ae, be = chunkLen(a, ai), chunkLen(b, bi)
			continue
		}
		n := min(len(x), len(y))
		c := commonSuffix(x[len(x)-n:], y[len(y)-n:])
		s += c
		if c < n {
			return s
		}
		ae, be = ae-n, be-n
		if ae == 0 {
			ai--
			ae = chunkLen(a, ai)
		}
		if be == 0 {
			bi--
			be = chunkLen(b, bi)
		}
	}
	return s
}

// chunkLen is the length of chunk i, 0 before the first.
func chunkLen(c []treeChunk, i int) int {
	if i < 0 {
		return 0
	}
	return len(c[i].data)
}

// commonPrefix returns how many leading bytes a and b share, comparing
// eight at a time.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	p := 0
	for p+8 <= n && binary.LittleEndian.Uint64(a[p:]) == binary.LittleEndian.Uint64(b[p:]) {
		p += 8
	}
	for p < n && a[p] == b[p] {
		p++
	}
	return p
}

// commonSuffix returns how many trailing bytes a and b share.
func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	s := 0
	for s+8 <= n && binary.LittleEndian.Uint64(a[len(a)-s-8:]) == binary.LittleEndian.Uint64(b[len(b)-s-8:]) {
		s += 8
	}
	for s < n && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	return s
}

// appendDeltaSize appends a delta header size: 7 bits per byte, least
// significant first, the high bit saying another byte follows.
func appendDeltaSize(d []byte, n int) []byte {
	for n >= 0x80 {
		d = append(d, byte(n)|0x80)
		n >>= 7
	}
	return append(d, byte(n))
}

// appendCopy appends copy instructions for base[off:off+n], in chunks a
// copy instruction can hold.
func appendCopy(d []byte, off, n int) []byte {
	for n > 0 {
		size := min(n, 0xffff)
		cmd := byte(0x80)
		at := len(d)
		d = append(d, 0)
		for i := range 4 {
			if b := byte(off >> (8 * i)); b != 0 {
				cmd |= 1 << i
				d = append(d, b)
			}
		}
		for i := range 2 {
			if b := byte(size >> (8 * i)); b != 0 {
				cmd |= 0x10 << i
				d = append(d, b)
			}
		}
		d[at] = cmd
		off += size
		n -= size
	}
	return d
}
