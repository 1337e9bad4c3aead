package pushcheck

import (
	"bufio"
	"strconv"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/schema"
)

// TestReadBatch reads `git cat-file --batch` output, keeping a blob over
// the size limit as its size alone.
func TestReadBatch(t *testing.T) {
	big := strings.Repeat("x", schema.MaxFileBytes+1)
	in := "aaaa blob 5\nhello\n" + "bbbb blob " + strconv.Itoa(len(big)) + "\n" + big + "\n" + "cccc blob 0\n\n"
	blobs, err := readBatch(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if string(blobs["aaaa"].data) != "hello" || blobs["bbbb"].data != nil || blobs["bbbb"].size != len(big) ||
		blobs["cccc"].data == nil || len(blobs) != 3 {
		t.Errorf("blobs: %v %v %v", blobs["aaaa"], blobs["bbbb"].size, blobs["cccc"])
	}
	if _, err := readBatch(bufio.NewReader(strings.NewReader("dddd missing\n"))); err == nil {
		t.Error("a missing object was read")
	}
	if _, err := readBatch(bufio.NewReader(strings.NewReader("eeee blob 10\nshort\n"))); err == nil {
		t.Error("a short blob was read")
	}
}

// TestLine renders problems as validate and the hook print them.
func TestLine(t *testing.T) {
	for _, c := range []struct {
		e    schema.FieldError
		want string
	}{
		{schema.FieldError{Loc: []any{"spec", "volumes", 0, "path"}, Msg: "m", Line: 7}, "f.yaml:7: spec.volumes[0].path: m"},
		{schema.FieldError{Msg: "m"}, "f.yaml: m"},
	} {
		if got := Line("f.yaml", c.e); got != c.want {
			t.Errorf("Line = %q, want %q", got, c.want)
		}
	}
}
