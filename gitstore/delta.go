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
	mid := target[p : len(target)-s]
	if len(mid)+64 > len(target)/2 {
		return nil
	}
	d := make([]byte, 0, len(mid)+len(mid)/127+32)
	d = appendDeltaSize(d, len(base))
	d = appendDeltaSize(d, len(target))
	d = appendCopy(d, 0, p)
	for len(mid) > 0 {
		n := min(len(mid), 127)
		d = append(append(d, byte(n)), mid[:n]...)
		mid = mid[n:]
	}
	return appendCopy(d, len(base)-s, s)
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
