//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// proxyV2 builds a PROXY protocol v2 header: cmd 0 (LOCAL) or 1 (PROXY),
// fam the family and transport byte, addrs the address block.
func proxyV2(cmd, fam byte, addrs []byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// proxyV2Addrs is the address block of a v2 PROXY header for src and dst.
func proxyV2Addrs(src, dst netip.AddrPort) []byte {
	var b []byte
	if src.Addr().Is4() {
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	} else {
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// addrRecorder is an echo handler that records each connection's client
// address as OnRequest sees it.
type addrRecorder struct {
	*testHandler
	mu    sync.Mutex
	addrs []netip.AddrPort
	peers []net.Addr
}

func newAddrRecorder() *addrRecorder {
	a := &addrRecorder{testHandler: newTestHandler()}
	a.onRequest = func(r *Request, _ *Decision) bool {
		a.mu.Lock()
		a.addrs = append(a.addrs, r.Conn.ClientAddr())
		a.peers = append(a.peers, r.Conn.RemoteAddr())
		a.mu.Unlock()
		return false
	}
	return a
}

// last returns the client address and TCP peer of the last request.
func (a *addrRecorder) last(t *testing.T) (netip.AddrPort, net.Addr) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.addrs) == 0 {
		t.Fatal("no request reached the handler")
	}
	return a.addrs[len(a.addrs)-1], a.peers[len(a.peers)-1]
}

func proxyOptions() Options {
	o := testOptions()
	o.ProxyProtocol = true
	return o
}

// TestProxyProtocol sends each kind of header, the upgrade and the first
// frames in one write: the frames are echoed, the client address is the
// header's source (the TCP peer's for LOCAL and UNKNOWN), and RemoteAddr
// stays the TCP peer.
func TestProxyProtocol(t *testing.T) {
	h := newAddrRecorder()
	s := startServer(t, h, proxyOptions())
	src4 := netip.MustParseAddrPort("203.0.113.7:51000")
	dst4 := netip.MustParseAddrPort("198.51.100.1:443")
	src6 := netip.MustParseAddrPort("[2001:db8::7]:51000")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	cases := []struct {
		name   string
		header []byte
		want   netip.AddrPort // zero: the TCP peer
	}{
		{"v1-tcp4", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"), src4},
		{"v1-tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n"), src6},
		{"v1-unknown", []byte("PROXY UNKNOWN\r\n"), netip.AddrPort{}},
		{"v2-ipv4", proxyV2(1, 0x11, proxyV2Addrs(src4, dst4)), src4},
		{"v2-ipv6", proxyV2(1, 0x21, proxyV2Addrs(src6, dst6)), src6},
		{"v2-ipv4-tlvs", proxyV2(1, 0x11, append(proxyV2Addrs(src4, dst4), 0x04, 0, 3, 'a', 'b', 'c')), src4},
		{"v2-local", proxyV2(0, 0x00, nil), netip.AddrPort{}},
		{"v2-local-with-addresses", proxyV2(0, 0x11, proxyV2Addrs(src4, dst4)), netip.AddrPort{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dialRaw(t, s)
			w.Write(tc.header, upgradeRequest("/ws"), text("first"), msg(ws.OpBinary, pattern(300, false)))
			w.ExpectSwitching()
			w.ExpectMessage(ws.OpText, []byte("first"))
			w.ExpectMessage(ws.OpBinary, pattern(300, false))
			got, peer := h.last(t)
			want := tc.want
			if !want.IsValid() {
				want = w.Conn.LocalAddr().(*net.TCPAddr).AddrPort()
				want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
			}
			if got != want {
				t.Fatalf("ClientAddr %v, want %v", got, want)
			}
			if peer.String() != w.Conn.LocalAddr().String() {
				t.Fatalf("RemoteAddr %v, want the TCP peer %v", peer, w.Conn.LocalAddr())
			}
			w.CloseNormally()
		})
	}
	if n := s.Stats().ProxyErrors; n != 0 {
		t.Fatalf("ProxyErrors = %d", n)
	}
}

// TestProxyProtocolByteByByte splits the header, the head and the frames
// into one-byte writes.
func TestProxyProtocolByteByByte(t *testing.T) {
	h := newAddrRecorder()
	s := startServer(t, h, proxyOptions())
	src := netip.MustParseAddrPort("192.0.2.44:4000")
	for _, header := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.44 192.0.2.1 4000 80\r\n"),
		proxyV2(1, 0x11, proxyV2Addrs(src, netip.MustParseAddrPort("192.0.2.1:80"))),
	} {
		w := dialRaw(t, s)
		all := bytes.Join([][]byte{header, upgradeRequest("/ws"), text("hello"), ping("p")}, nil)
		w.WriteChopped(all, 1, 100*time.Microsecond)
		w.ExpectSwitching()
		w.ExpectMessage(ws.OpText, []byte("hello"))
		w.ExpectPong([]byte("p"))
		if got, _ := h.last(t); got != src {
			t.Fatalf("ClientAddr %v, want %v", got, src)
		}
		w.CloseNormally()
	}
}

// TestProxyProtocolKeepAlive: the header comes once per connection, before
// the first of several requests.
func TestProxyProtocolKeepAlive(t *testing.T) {
	h := newAddrRecorder()
	s := startServer(t, h, proxyOptions())
	w := dialRaw(t, s)
	get := []byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
	w.Write([]byte("PROXY TCP4 192.0.2.9 192.0.2.1 4000 80\r\n"), get)
	for i := range 2 {
		if status, head := w.ReadHead(); status != 200 {
			t.Fatalf("request %d: %s", i, head)
		}
		if _, err := io.ReadFull(w.R, make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w.Write(get) // no second header
		}
	}
	if got, _ := h.last(t); got != netip.MustParseAddrPort("192.0.2.9:4000") {
		t.Fatalf("ClientAddr %v", got)
	}
}

// TestProxyProtocolRefused: a connection that does not start with a valid
// header is closed without a byte of response, and counted.
func TestProxyProtocolRefused(t *testing.T) {
	h := newAddrRecorder()
	s := startServer(t, h, proxyOptions())
	cases := []struct{ name, in string }{
		{"http-without-header", string(upgradeRequest("/ws"))},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
		{"bad-v1", "PROXY TCP4 1.2.3 192.0.2.1 4000 80\r\n" + string(upgradeRequest("/ws"))},
		{"v1-too-long", "PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"},
		{"bad-v2-version", string(proxyV2(1, 0x11, make([]byte, 12))[:12]) + "\x31\x11\x00\x0c" + strings.Repeat("\x00", 12)},
		{"v2-udp", string(proxyV2(1, 0x12, make([]byte, 12)))},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dialRaw(t, s)
			w.Write([]byte(tc.in))
			b, err := io.ReadAll(w.R)
			if err != nil || len(b) != 0 {
				t.Fatalf("got %q, %v; want EOF without a response", b, err)
			}
			eventually(t, "the refusal to be counted", func() bool { return s.Stats().ProxyErrors == uint64(i+1) })
		})
	}
	if n := h.opened.Load(); n != 0 {
		t.Fatalf("%d connections opened", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.addrs) != 0 {
		t.Fatalf("%d requests reached the handler", len(h.addrs))
	}
}

// TestProxyProtocolTimeout: a header that never completes is ended by the
// handshake timeout, without an HTTP answer.
func TestProxyProtocolTimeout(t *testing.T) {
	o := proxyOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	s := startServer(t, newTestHandler(), o)
	w := dialRaw(t, s)
	w.Write([]byte("PROXY TCP4 192.0.2.9 192.0.2.1"))
	start := time.Now()
	b, err := io.ReadAll(w.R)
	if err != nil || len(b) != 0 {
		t.Fatalf("got %q, %v; want EOF without a response", b, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the handshake timeout", d)
	}
	if st := s.Stats(); st.HandshakeTimeouts != 1 || st.ProxyErrors != 0 || st.Rejected[408] != 0 {
		t.Fatalf("stats %+v", st)
	}
}
