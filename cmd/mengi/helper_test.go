package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// TestHelperProcess is not a test: it runs the mengi command when a test
// starts this test binary as a child process (see mengiCmd), so tests drive
// the real binary, signals and exit codes included.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("MENGI_HELPER_PROCESS") != "1" {
		t.Skip("helper process for other tests")
	}
	args := []string{"mengi"}
	for i, a := range os.Args {
		if a == "--" {
			args = append(args, os.Args[i+1:]...)
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, args); err != nil {
		os.Stderr.WriteString("mengi: " + err.Error() + "\n")
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

// mengiCmd returns a command running `mengi args...` in a child process.
func mengiCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "MENGI_HELPER_PROCESS=1")
	return cmd
}

// runMengi runs `mengi args...` to completion and returns its stdout.
func runMengi(t *testing.T, args ...string) string {
	t.Helper()
	cmd := mengiCmd(args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("mengi %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}
