package fetchguard

import (
	"net/netip"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		ip, class string
	}{
		{"127.0.0.1", ClassLoopback},
		{"127.255.255.254", ClassLoopback},
		{"::1", ClassLoopback},
		{"::ffff:127.0.0.1", ClassLoopback},
		{"169.254.169.254", ClassLinkLocal}, // cloud metadata
		{"169.254.0.1", ClassLinkLocal},
		{"fe80::1", ClassLinkLocal},
		{"fe80::1%lo", ClassLinkLocal},
		{"febf:ffff::1", ClassLinkLocal},
		{"::ffff:169.254.169.254", ClassLinkLocal},
		{"10.0.0.1", ClassPrivate},
		{"10.255.255.255", ClassPrivate},
		{"172.16.0.1", ClassPrivate},
		{"172.31.255.255", ClassPrivate},
		{"192.168.1.1", ClassPrivate},
		{"fc00::1", ClassPrivate},
		{"fd00:ec2::254", ClassPrivate}, // AWS metadata over IPv6
		{"fec0::1", ClassPrivate},
		{"::ffff:10.0.0.1", ClassPrivate},
		{"::ffff:192.168.0.1", ClassPrivate},
		{"64:ff9b::a00:1", ClassPrivate},   // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", ClassLoopback}, // NAT64 of 127.0.0.1
		{"64:ff9b:1::1", ClassPrivate},
		{"2002:a9fe:a9fe::1", ClassLinkLocal}, // 6to4 of 169.254.169.254
		{"2002:7f00:1::", ClassLoopback},      // 6to4 of 127.0.0.1
		{"100.64.0.1", ClassShared},
		{"100.127.255.255", ClassShared},
		{"0.0.0.0", ClassUnspecified},
		{"0.1.2.3", ClassUnspecified},
		{"::", ClassUnspecified},
		{"::ffff:0.0.0.0", ClassUnspecified},
		{"224.0.0.1", ClassMulticast},
		{"239.255.255.250", ClassMulticast},
		{"ff02::1", ClassMulticast},
		{"ff05::2", ClassMulticast},
		{"255.255.255.255", ClassBroadcast},
		{"::ffff:255.255.255.255", ClassBroadcast},
		{"240.0.0.1", ClassReserved},
		{"198.18.0.1", ClassReserved},
		{"192.0.0.8", ClassReserved},
		{"::127.0.0.1", ClassReserved}, // IPv4-compatible
		{"100::1", ClassReserved},

		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"169.253.255.255", ""},
		{"11.0.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
	}
	for _, tc := range cases {
		ip := netip.MustParseAddr(tc.ip)
		if got := Classify(ip); got != tc.class {
			t.Errorf("Classify(%s) = %q; want %q", tc.ip, got, tc.class)
		}
	}
	if got := Classify(netip.Addr{}); got != ClassUnspecified {
		t.Errorf("Classify(zero Addr) = %q; want %q", got, ClassUnspecified)
	}
}

func TestAllowList(t *testing.T) {
	g, err := New(Options{Allow: []string{"127.0.0.1/32", "10.20.0.0/16", "::ffff:192.168.1.0/120", "fd00:1::5", "[::1]", "Charts.Internal."}})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.1": true, "127.0.0.2": false,
		"10.20.3.4": true, "10.21.0.1": false,
		"192.168.1.77": true, "::ffff:192.168.1.77": true, "192.168.2.1": false,
		"fd00:1::5": true, "fd00:1::6": false, "::1": true,
		"169.254.169.254": false, "8.8.8.8": true,
	} {
		if got := g.Allowed(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Allowed(%s) = %v; want %v", ip, got, want)
		}
	}
	if !g.allowHosts["charts.internal"] {
		t.Errorf("host names are kept in lowercase without the final dot: %v", g.allowHosts)
	}
	for _, bad := range []string{"http://charts.internal", "10.0.0.0/33", "charts.internal:8080", "a b", "", "-x.example"} {
		if _, err := New(Options{Allow: []string{bad}}); err == nil {
			t.Errorf("allow-list entry %q accepted", bad)
		}
	}
}
