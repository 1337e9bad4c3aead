package devcluster_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Helpers that read /proc, for the checks that a stopped cluster left
// nothing behind.

// listenerPIDs returns the processes holding a listening TCP socket on port.
func listenerPIDs(port int) []int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" {
				continue
			}
			if i := strings.LastIndexByte(fields[1], ':'); i >= 0 {
				if p, err := strconv.ParseInt(fields[1][i+1:], 16, 32); err == nil && int(p) == port {
					inodes["socket:["+fields[9]+"]"] = true
				}
			}
		}
		fh.Close()
	}
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// startTicks returns when pid started, in clock ticks since boot.
func startTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Field 22 of stat; fields here start at field 3.
	return strconv.ParseInt(fields[22-3], 10, 64)
}

// uptimeTicks returns the time since boot in clock ticks (USER_HZ, 100 on
// Linux).
func uptimeTicks() int64 {
	b, _ := os.ReadFile("/proc/uptime")
	var up float64
	_, _ = fmt.Sscanf(string(b), "%f", &up)
	return int64(up * 100)
}

func TestProcHelpers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pids := listenerPIDs(l.Addr().(*net.TCPAddr).Port)
	if !slices.Contains(pids, os.Getpid()) {
		t.Errorf("listenerPIDs = %v; want our pid %d", pids, os.Getpid())
	}
	st, err := startTicks(os.Getpid())
	if up := uptimeTicks(); err != nil || st <= 0 || st > up {
		t.Errorf("startTicks = %d, %v; uptime %d", st, err, up)
	}
}
