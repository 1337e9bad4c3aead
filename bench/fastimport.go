package bench

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// FastImport is the reference a store benchmark is compared with: it
// replays wl through `git fast-import` into the repository at dir (a copy
// of the seeded one), one commit per write on the branch, the writers'
// writes interleaved round robin, for duration. It returns the commits
// made and the time taken, fast-import's final pack and ref update
// included. fast-import makes nothing durable (no fsync) and runs no check.
func FastImport(ctx context.Context, dir, branch string, wl *Workload, duration time.Duration) (int, time.Duration, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "fast-import", "--quiet", "--done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("git fast-import: %w", err)
	}
	w := bufio.NewWriterSize(stdin, 256<<10)
	commits := 0
	for i := 0; time.Since(start) < duration && ctx.Err() == nil; i++ {
		for writer := range wl.Writers {
			wr, err := wl.Write(writer, i)
			if err != nil {
				stdin.Close()
				cmd.Wait()
				return 0, 0, err
			}
			ts := wl.Now.Unix()
			fmt.Fprintf(w, "commit refs/heads/%s\nauthor %s <%s> %d +0000\ncommitter Mengi GitOps <gitops@mengi.local> %d +0000\ndata %d\n%s\n",
				branch, wr.Author.Name, wr.Author.Email, ts, ts, len(wr.Message), wr.Message)
			if commits == 0 {
				fmt.Fprintf(w, "from refs/heads/%s^0\n", branch)
			}
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", wr.Path, len(wr.Content))
			w.Write(wr.Content)
			w.WriteString("\n")
			commits++
		}
	}
	w.WriteString("done\n")
	if err := w.Flush(); err != nil {
		return 0, 0, fmt.Errorf("git fast-import: %w: %s", err, stderr.String())
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("git fast-import: %w: %s", err, stderr.String())
	}
	return commits, time.Since(start), nil
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
