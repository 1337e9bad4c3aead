package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// mengiCmd returns a command running `mengi args...` in a child process:
// this test binary, which TestMain turns into the mengi command.
func mengiCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
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
