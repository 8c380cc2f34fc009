package gateway

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/wstest"
)

// proxyV2Header is a PROXY protocol v2 header: cmd 1 (PROXY) with src and
// dst, or cmd 0 (LOCAL) when src is the zero value.
func proxyV2Header(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	if !src.IsValid() {
		return append(b, 0x20, 0x00, 0, 0)
	}
	var addrs []byte
	fam := byte(0x11)
	if src.Addr().Is4() {
		s, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else {
		fam = 0x21
		s, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, s[:]...), d[:]...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// dialProxied connects as a load balancer would: the PROXY header, then
// the client's handshake on path (with extra header lines) and the bytes
// of after, all in one write. It reads the 101 and returns the client.
func dialProxied(t *testing.T, g *Gateway, header []byte, path, extra string, after []byte) *wstest.Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
	out := append(append(append([]byte(nil), header...), req...), after...)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	rc := wstest.NewClient(t, c)
	rc.ExpectSwitching()
	return rc
}

func TestProxyProtocol(t *testing.T) {
	h := &addrHandler{addrs: make(chan netip.Addr, 8)}
	cfg := testConfig(Route{Path: "/echo", Behaviour: Echo}, Route{Path: "/c", Behaviour: Custom})
	cfg.ProxyProtocol = true
	g := startGateway(t, cfg, WithHandler(h))
	dst := netip.MustParseAddrPort("192.0.2.1:443")

	// v1, then the upgrade and the first message in the same write.
	rc := dialProxied(t, g, []byte("PROXY TCP4 203.0.113.50 192.0.2.1 40000 443\r\n"), "/echo", "",
		maskedFrame(1, []byte("through the balancer")))
	buf := make([]byte, 64)
	if op, n, err := rc.ReadFrameInto(buf); err != nil || op != 1 || string(buf[:n]) != "through the balancer" {
		t.Fatalf("echo: op %d %q %v", op, buf[:n], err)
	}
	var id uint64
	eventually(t, "registration", func() bool {
		ids := ids(g)
		if len(ids) == 1 {
			id = ids[0]
		}
		return len(ids) == 1
	})
	info := doJSON(t, "GET", adminURL(g, fmt.Sprintf("/connections/%d", id)), nil, 200)
	if info["client"] != "203.0.113.50" || info["remote"] != rc.Conn.LocalAddr().String() {
		t.Fatalf("connection info %v: want client 203.0.113.50 and remote %v", info, rc.Conn.LocalAddr())
	}

	// v2 over IPv6 and IPv4, and LOCAL (the balancer's own connection).
	dialProxied(t, g, proxyV2Header(netip.MustParseAddrPort("[2001:db8::50]:40000"), netip.MustParseAddrPort("[2001:db8::1]:443")), "/c", "", nil)
	h.expect(t, "2001:db8::50")
	dialProxied(t, g, proxyV2Header(netip.MustParseAddrPort("198.51.100.20:40000"), dst), "/c", "", nil)
	h.expect(t, "198.51.100.20")
	dialProxied(t, g, proxyV2Header(netip.AddrPort{}, netip.AddrPort{}), "/c", "", nil)
	h.expect(t, "127.0.0.1")

	// Plain requests (the balancer's health checks) work behind a header.
	nc, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte("PROXY TCP4 203.0.113.50 192.0.2.1 40001 443\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(nc); !strings.HasPrefix(string(b), "HTTP/1.1 200 ") || !strings.HasSuffix(string(b), "\r\n\r\nok\n") {
		t.Fatalf("health check behind a header: %q", b)
	}

	// Anything else is closed without a response, and counted.
	for i, in := range []string{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "PROXY TCP4 nonsense\r\n"} {
		nc, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(testTimeout))
		if _, err := nc.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
			t.Fatalf("%q: got %q, %v; want EOF without a response", in, b, err)
		}
		_ = nc.Close()
		if v := metric(t, g, `upgate_rejections_total{reason="proxy_protocol"}`); v != float64(i+1) {
			t.Fatalf("proxy_protocol rejections %v, want %d", v, i+1)
		}
	}
}

// TestProxyProtocolTrustedProxies: the PROXY source is the immediate peer
// that TrustedProxies judges; X-Forwarded-For applies on top of it.
func TestProxyProtocolTrustedProxies(t *testing.T) {
	h := &addrHandler{addrs: make(chan netip.Addr, 8)}
	cfg := testConfig(Route{Path: "/c", Behaviour: Custom})
	cfg.ProxyProtocol = true
	cfg.TrustedProxies = []string{"10.0.0.0/8"}
	g := startGateway(t, cfg, WithHandler(h))
	dst := netip.MustParseAddrPort("192.0.2.1:443")

	// An L7 proxy at 10.1.2.3 behind the L4 balancer: its header is believed.
	dialProxied(t, g, proxyV2Header(netip.MustParseAddrPort("10.1.2.3:5000"), dst), "/c", "X-Forwarded-For: 198.51.100.7\r\n", nil)
	h.expect(t, "198.51.100.7")
	// A client straight through the balancer: its own header is not.
	dialProxied(t, g, []byte("PROXY TCP4 203.0.113.9 192.0.2.1 5000 443\r\n"), "/c", "X-Forwarded-For: 198.51.100.7\r\n", nil)
	h.expect(t, "203.0.113.9")
	// The TCP peer (127.0.0.1, the balancer) is not what is judged: with
	// LOCAL the balancer itself is the client.
	dialProxied(t, g, proxyV2Header(netip.AddrPort{}, netip.AddrPort{}), "/c", "X-Forwarded-For: 198.51.100.7\r\n", nil)
	h.expect(t, "127.0.0.1")
}
