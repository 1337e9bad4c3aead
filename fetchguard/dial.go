package fetchguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// dialContext connects to addr (host:port) for the transport: to the
// operator's proxy as it is; otherwise to each of host's addresses in
// turn, each checked by control just before the connection is made (a
// host the allow-list names may have any address).
func (g *Guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if g.proxy != nil && addr == g.proxyAddr {
		return (&net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}).DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	control := g.control
	if g.allowHosts[normalHost(host)] {
		control = g.controlAllowed
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive, ControlContext: control}
	var errs []error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Dial timeouts.
const (
	dialTimeout = 15 * time.Second
	keepAlive   = 30 * time.Second
)

// control runs after the socket is made and before it connects: it refuses
// an address the guard does not allow, so no packet is sent to it. It sees
// the address really dialled, whatever a name resolved to before.
func (g *Guard) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("fetchguard: network %q refused", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", errNoIP, address)
	}
	if r := g.refusal(ap.Addr()); r != nil {
		return r
	}
	return g.controlAllowed(ctx, network, address, nil)
}

// controlAllowed is control for a host the allow-list names: every
// address it resolves to is admitted.
func (g *Guard) controlAllowed(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("fetchguard: network %q refused", network)
	}
	if g.admitted == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", errNoIP, address)
	}
	return g.admitted(ap.Addr())
}
