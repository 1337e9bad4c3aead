package devcluster

import (
	"fmt"
	"net"
	"strconv"
)

// Ports are the loopback TCP ports of one cluster. kwok serves no port.
type Ports struct {
	Etcd              int // etcd client URL (http)
	EtcdPeer          int // etcd peer URL (http), unused by a single member
	APIServer         int // kube-apiserver (https)
	ControllerManager int // kube-controller-manager /healthz (https)
	Scheduler         int // kube-scheduler /healthz (https)
}

// List returns every port, for checks that none is left listening.
func (p Ports) List() []int {
	return []int{p.Etcd, p.EtcdPeer, p.APIServer, p.ControllerManager, p.Scheduler}
}

// pickPorts asks the kernel for distinct free ports on 127.0.0.1 and keeps
// apiPort when it is not 0. Another process may take a port between this call
// and the component's bind; Start detects "address already in use" and tries
// again with new ports.
func pickPorts(apiPort int) (Ports, error) {
	n := 5
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Ports{}, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	p := Ports{Etcd: ports[0], EtcdPeer: ports[1], APIServer: ports[2], ControllerManager: ports[3], Scheduler: ports[4]}
	if apiPort != 0 {
		// A fixed port that is taken will stay taken: fail now, not after
		// the API server's start.
		l, err := net.Listen("tcp", loopback(apiPort))
		if err != nil {
			return Ports{}, fmt.Errorf("API server port: %w", err)
		}
		_ = l.Close()
		p.APIServer = apiPort
	}
	return p, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
