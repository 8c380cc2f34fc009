//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
)

// prefixConn is a net.Conn whose first Write sends prefix in front of its
// bytes, in writes of at most chunk bytes each (one write when 0): a
// balancer's PROXY header in the segment of the ClientHello, or split.
type prefixConn struct {
	net.Conn
	sent   bool
	prefix []byte
	chunk  int
}

func (c *prefixConn) Write(p []byte) (int, error) {
	if c.sent {
		return c.Conn.Write(p)
	}
	c.sent = true
	b := append(append([]byte(nil), c.prefix...), p...)
	step := c.chunk
	if step == 0 {
		step = len(b)
	}
	for len(b) > 0 {
		k := min(step, len(b))
		if _, err := c.Conn.Write(b[:k]); err != nil {
			return 0, err
		}
		b = b[k:]
	}
	return len(p), nil
}

// startTLSProxy starts the echo server with a plain and a TLS listener
// behind a PROXY protocol balancer.
func startTLSProxy(t *testing.T, o Options) (*Server, *addrRecorder, *tls.Config) {
	t.Helper()
	srv, cli := testTLS(t)
	o.TLS = srv
	o.TLSAddr = "127.0.0.1:0"
	o.ProxyProtocol = true
	h := newAddrRecorder()
	return startServer(t, h, o), h, cli
}

// TestTLSProxyProtocol sends PROXY headers before the ClientHello: with it
// in one segment, apart, and split byte by byte. The handshake follows the
// header and the header's source is the client's address.
func TestTLSProxyProtocol(t *testing.T) {
	s, h, cli := startTLSProxy(t, testOptions())
	src4 := netip.MustParseAddrPort("203.0.113.7:51000")
	dst4 := netip.MustParseAddrPort("198.51.100.1:443")
	src6 := netip.MustParseAddrPort("[2001:db8::7]:51000")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	for i, tc := range []struct {
		header []byte
		chunk  int  // 0: the header and the ClientHello in one write
		apart  bool // the header in a write of its own first
		want   netip.AddrPort
	}{
		{[]byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"), 0, false, src4},
		{[]byte("PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n"), 0, true, src6},
		{proxyV2(1, 0x11, proxyV2Addrs(src4, dst4)), 0, false, src4},
		{proxyV2(1, 0x21, proxyV2Addrs(src6, dst6)), 0, true, src6},
		{proxyV2(1, 0x11, proxyV2Addrs(src4, dst4)), 1, false, src4},
		{[]byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"), 7, false, src4},
		{proxyV2(0, 0x00, nil), 0, false, netip.AddrPort{}},
	} {
		raw, err := net.DialTimeout("tcp", s.TLSAddr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(testTimeout))
		var under net.Conn = &prefixConn{Conn: raw, prefix: tc.header, chunk: tc.chunk}
		if tc.apart {
			if _, err := raw.Write(tc.header); err != nil {
				t.Fatal(err)
			}
			under = raw
		}
		c := tls.Client(under, cli)
		w := wstest.NewClient(t, c)
		w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("behind a balancer")))
		w.ExpectSwitching()
		w.ExpectMessage(ws.OpText, []byte("behind a balancer"))
		got, peer := h.last(t)
		want := tc.want
		if !want.IsValid() {
			want = raw.LocalAddr().(*net.TCPAddr).AddrPort()
		}
		if got != want || peer.String() != raw.LocalAddr().String() {
			t.Fatalf("#%d: got ClientAddr %v, RemoteAddr %v; want %v, %v", i, got, peer, want, raw.LocalAddr())
		}
		w.CloseNormally()
	}
	// The plain listener expects the header too.
	w := &wsClient{wstest.Dial(t, s.Addr().String())}
	w.Write([]byte("PROXY TCP4 192.0.2.9 192.0.2.1 4000 80\r\n"), upgradeRequest("/ws"))
	w.ExpectSwitching()
	if got, _ := h.last(t); got != netip.MustParseAddrPort("192.0.2.9:4000") {
		t.Fatalf("plain: got ClientAddr %v; want 192.0.2.9:4000", got)
	}
	w.CloseNormally()
	if st := s.Stats(); st.ProxyErrors != 0 || st.TLSHandshakes != 7 || st.TLSFailures != 0 {
		t.Fatalf("stats: got %d PROXY errors, %d handshakes, %d TLS failures; want 0, 7, 0",
			st.ProxyErrors, st.TLSHandshakes, st.TLSFailures)
	}
}

// TestTLSProxyProtocolRefused: on the TLS listener, a connection that does
// not begin with a valid PROXY header (a ClientHello straight away, a
// malformed header) is closed without a byte, as on the plain listener,
// and counted as a PROXY error; the handshake goroutine ends.
func TestTLSProxyProtocolRefused(t *testing.T) {
	s, h, cli := startTLSProxy(t, testOptions())
	for i, header := range [][]byte{
		nil, // the ClientHello first
		[]byte("PROXY TCP4 1.2.3 192.0.2.1 4000 80\r\n"),
		proxyV2(1, 0x12, make([]byte, 12)),
	} {
		raw, err := net.DialTimeout("tcp", s.TLSAddr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(testTimeout))
		if header != nil {
			if _, err := raw.Write(header); err != nil {
				t.Fatal(err)
			}
		}
		go func() { _ = tls.Client(raw, cli).Handshake() }() // writes the ClientHello, fails
		b, err := io.ReadAll(raw)
		if len(b) != 0 || (err != nil && !isReset(err)) {
			t.Fatalf("#%d: got %q, %v; want the connection closed without a byte", i, b, err)
		}
		_ = raw.Close()
		eventually(t, "the refusal to be counted", func() bool { return s.Stats().ProxyErrors == uint64(i+1) })
	}
	eventually(t, "every connection to close", func() bool { return s.Stats().ConnsOpen == 0 })
	if st := s.Stats(); st.TLSHandshakes != 0 || h.opened.Load() != 0 {
		t.Fatalf("got %d handshakes, %d opened; want none", st.TLSHandshakes, h.opened.Load())
	}
}

// TestTLSProxyProtocolTimeout: a PROXY header that never completes on the
// TLS listener is ended by the handshake timeout.
func TestTLSProxyProtocolTimeout(t *testing.T) {
	o := testOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	s, _, _ := startTLSProxy(t, o)
	raw, err := net.DialTimeout("tcp", s.TLSAddr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(testTimeout))
	if _, err := raw.Write([]byte("PROXY TCP4 192.0.2.9 192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(raw); len(b) != 0 || (err != nil && !isReset(err)) {
		t.Fatalf("got %q, %v; want the connection closed without a byte", b, err)
	}
	eventually(t, "the timeout to be counted", func() bool { return s.Stats().HandshakeTimeouts == 1 })
	if st := s.Stats(); st.ProxyErrors != 0 {
		t.Fatalf("got %d PROXY errors; want 0", st.ProxyErrors)
	}
}
