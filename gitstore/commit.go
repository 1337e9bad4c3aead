package gitstore

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Signature is a commit's author or committer.
type Signature struct {
	Name  string
	Email string
}

// signatureStrip removes what Git does not allow in a name or email. A
// Replacer is safe for concurrent use and never changes once built.
var signatureStrip = strings.NewReplacer("<", "", ">", "", "\n", " ", "\r", " ", "\x00", "")

// clean removes what Git does not allow in a name or email.
func (s Signature) clean() Signature {
	s.Name = strings.TrimSpace(signatureStrip.Replace(s.Name))
	s.Email = strings.TrimSpace(signatureStrip.Replace(s.Email))
	if s.Name == "" {
		s.Name = s.Email
	}
	return s
}

func (s Signature) encode(when time.Time) string {
	s = s.clean()
	_, off := when.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%s <%s> %d %c%02d%02d", s.Name, s.Email, when.Unix(), sign, off/3600, off%3600/60)
}

// Trailer is a `Key: value` line at the end of a commit message.
type Trailer struct {
	Key, Value string
}

// Message formats a commit message: the subject, an optional body, and the
// trailers in the order given.
func Message(subject, body string, trailers ...Trailer) string {
	// git refuses a commit holding NUL (fsck: nulInCommit); no caller
	// should pass one, and none ever reaches a commit.
	subject, body = noNUL(subject), noNUL(body)
	var b strings.Builder
	b.WriteString(strings.TrimSpace(subject))
	b.WriteString("\n")
	if body = strings.TrimSpace(body); body != "" {
		b.WriteString("\n" + body + "\n")
	}
	first := true
	for _, t := range trailers {
		if t.Value == "" {
			continue
		}
		if first {
			b.WriteString("\n")
			first = false
		}
		fmt.Fprintf(&b, "%s: %s\n", noNUL(t.Key), noNUL(strings.ReplaceAll(t.Value, "\n", " ")))
	}
	return b.String()
}

// noNUL writes NUL bytes as the two characters \0.
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", `\0`) }

// encodeCommit makes a commit object.
func encodeCommit(treeHash, parent plumbing.Hash, author, committer Signature, when time.Time, message string) object {
	var b bytes.Buffer
	b.Grow(256 + len(message)) // the headers and signatures fit
	fmt.Fprintf(&b, "tree %s\n", treeHash)
	if !parent.IsZero() {
		fmt.Fprintf(&b, "parent %s\n", parent)
	}
	fmt.Fprintf(&b, "author %s\n", author.encode(when))
	fmt.Fprintf(&b, "committer %s\n", committer.encode(when))
	b.WriteString("\n")
	b.WriteString(message)
	return newObject(plumbing.CommitObject, b.Bytes())
}

// commitInfo is what history needs from a commit.
type commitInfo struct {
	hash     plumbing.Hash
	tree     plumbing.Hash
	parents  []plumbing.Hash
	author   Signature
	when     time.Time
	message  string
	trailers map[string]string
}

// decodeCommit parses a commit object.
func decodeCommit(h plumbing.Hash, data []byte) (*commitInfo, error) {
	c := &commitInfo{hash: h, trailers: map[string]string{}}
	header, msg, _ := bytes.Cut(data, []byte("\n\n"))
	for _, line := range strings.Split(string(header), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			c.tree = plumbing.NewHash(val)
		case "parent":
			c.parents = append(c.parents, plumbing.NewHash(val))
		case "author":
			c.author, c.when = parseSignature(val)
		}
	}
	c.message = string(msg)
	lines := strings.Split(strings.TrimRight(c.message, "\n"), "\n")
	for i := len(lines) - 1; i > 0; i-- {
		k, v, ok := strings.Cut(lines[i], ": ")
		if !ok || strings.ContainsAny(k, " \t") || k == "" {
			break
		}
		c.trailers[k] = v
	}
	if c.tree.IsZero() {
		return nil, fmt.Errorf("commit %s: no tree", h)
	}
	return c, nil
}

// parseSignature reads `Name <email> 1700000000 +0000`.
func parseSignature(s string) (Signature, time.Time) {
	lt, gt := strings.LastIndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if lt < 0 || gt < lt {
		return Signature{Name: s}, time.Time{}
	}
	sig := Signature{Name: strings.TrimSpace(s[:lt]), Email: s[lt+1 : gt]}
	var sec int64
	var tz string
	fmt.Sscanf(strings.TrimSpace(s[gt+1:]), "%d %s", &sec, &tz)
	when := time.Unix(sec, 0).UTC()
	if len(tz) == 5 && tz != "+0000" {
		var hh, mm int
		fmt.Sscanf(tz[1:], "%02d%02d", &hh, &mm)
		off := hh*3600 + mm*60
		if tz[0] == '-' {
			off = -off
		}
		when = when.In(time.FixedZone(tz, off))
	}
	return sig, when
}
