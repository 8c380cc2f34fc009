//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/wstest"
)

func TestListenerOptions(t *testing.T) {
	cfg := &tls.Config{}
	for i, tc := range []struct {
		o    Options
		want string // "" when valid
	}{
		{Options{TLSAddr: "127.0.0.1:0"}, "TLSAddr \"127.0.0.1:0\" needs TLS"},
		{Options{Addr: ListenOff}, "needs TLSAddr"},
		{Options{Addr: ListenOff, TLS: cfg}, "needs TLSAddr"},
		{Options{TLS: cfg, TLSAddr: ListenOff}, "TLSAddr cannot be \"off\""},
		{Options{Addr: "127.0.0.1:8443", TLS: cfg, TLSAddr: "tcp://127.0.0.1:8443"}, "same address"},
		{Options{Addr: "127.0.0.1:9000", TLS: cfg, TLSAddr: "127.0.0.1:0", ReusePort: true, NumLoops: 2}, "explicit port"},
		{Options{Addr: "127.0.0.1:0", TLS: cfg, TLSAddr: "127.0.0.1:0"}, ""},
		{Options{Addr: ListenOff, TLS: cfg, TLSAddr: "127.0.0.1:0"}, ""},
		{Options{TLS: cfg}, ""},
	} {
		_, err := New(newTestHandler(), tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("#%d: got %v; want no error", i, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("#%d: got %v; want an error saying %q", i, err, tc.want)
		}
	}
}

func TestListenersOf(t *testing.T) {
	cfg := &tls.Config{}
	for i, tc := range []struct {
		o    Options
		want []listener
	}{
		{Options{Addr: "127.0.0.1:1"}, []listener{{proto: "tcp://127.0.0.1:1"}}},
		{Options{Addr: "127.0.0.1:1", TLS: cfg}, []listener{{proto: "tcp://127.0.0.1:1", tls: true}}},
		{Options{Addr: ListenOff, TLS: cfg, TLSAddr: "tcp4://:2"}, []listener{{proto: "tcp4://:2", tls: true}}},
		{Options{Addr: ":1", TLS: cfg, TLSAddr: ":2"},
			[]listener{{proto: "tcp://:1"}, {proto: "tcp://:2", tls: true}}},
		{Options{Addr: "127.0.0.1:0", TLS: cfg, TLSAddr: "tcp4://127.0.0.1:0"},
			[]listener{{proto: "tcp://127.0.0.1:0"}, {proto: "tcp4://127.0.0.1:00", tls: true}}},
		{Options{Addr: "[::1]:", TLS: cfg, TLSAddr: "[::1]:"},
			[]listener{{proto: "tcp://[::1]:"}, {proto: "tcp://[::1]:00", tls: true}}},
	} {
		got := tc.o.listeners()
		if len(got) != len(tc.want) {
			t.Fatalf("#%d: got %+v; want %+v", i, got, tc.want)
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("#%d: got %+v; want %+v", i, got, tc.want)
			}
		}
	}
}

func TestSplitListeners(t *testing.T) {
	ap := netip.MustParseAddrPort
	wild4, lo := netip.IPv4Unspecified(), netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("10.0.0.1")
	for i, tc := range []struct {
		sp   splitListeners
		a    netip.AddrPort
		want bool
	}{
		{splitListeners{tlsPort: 8443, plainPort: 8080, tlsIP: wild4, plainIP: wild4}, ap("127.0.0.1:8443"), true},
		{splitListeners{tlsPort: 8443, plainPort: 8080, tlsIP: wild4, plainIP: wild4}, ap("10.0.0.1:8080"), false},
		{splitListeners{tlsPort: 8443, plainPort: 8080, tlsIP: wild4, plainIP: wild4}, ap("[::ffff:127.0.0.1]:8443"), true},
		// The same port on two addresses.
		{splitListeners{tlsPort: 443, plainPort: 443, tlsIP: other, plainIP: lo}, ap("10.0.0.1:443"), true},
		{splitListeners{tlsPort: 443, plainPort: 443, tlsIP: other, plainIP: lo}, ap("127.0.0.1:443"), false},
		{splitListeners{tlsPort: 443, plainPort: 443, tlsIP: wild4, plainIP: lo}, ap("127.0.0.1:443"), false},
		{splitListeners{tlsPort: 443, plainPort: 443, tlsIP: wild4, plainIP: lo}, ap("10.0.0.1:443"), true},
		{splitListeners{tlsPort: 443, plainPort: 443, tlsIP: lo, plainIP: wild4}, ap("10.0.0.1:443"), false},
	} {
		if got := tc.sp.isTLS(tc.a); got != tc.want {
			t.Errorf("#%d: %v: got TLS %v; want %v", i, tc.a, got, tc.want)
		}
	}
}

// dialTLSAt completes a TLS handshake with addr.
func dialTLSAt(t *testing.T, addr net.Addr, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestTwoListeners serves a plain and a TLS client on one server, each on
// its own listener, both listeners on port 0 of 127.0.0.1 and every loop
// reached at Start.
func TestTwoListeners(t *testing.T) {
	srv, cli := testTLS(t)
	o := testOptions()
	o.TLS = srv
	o.TLSAddr = "127.0.0.1:0"
	h := newTestHandler()
	s := startServer(t, h, o)
	plain, secure := s.Addr(), s.TLSAddr()
	if plain == nil || secure == nil || plain.String() == secure.String() {
		t.Fatalf("got Addr %v, TLSAddr %v; want two addresses", plain, secure)
	}
	if n := s.unbound(); n != 0 {
		t.Fatalf("%d loops not reached at Start", n)
	}

	pw := &wsClient{wstest.DialWS(t, plain.String(), "/ws")}
	tw := wstest.NewClient(t, dialTLSAt(t, secure, cli))
	tw.Write(upgradeRequest("/ws"))
	tw.ExpectSwitching()
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: cli}
	gc, _, err := d.Dial("wss://"+secure.String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()

	pw.Write(msg(ws.OpText, []byte("plain")))
	pw.ExpectMessage(ws.OpText, []byte("plain"))
	tw.Write(msg(ws.OpText, []byte("secure")))
	tw.ExpectMessage(ws.OpText, []byte("secure"))
	_ = gc.SetReadDeadline(time.Now().Add(testTimeout))
	if err := gc.WriteMessage(websocket.BinaryMessage, []byte("gorilla")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := gc.ReadMessage(); err != nil || string(p) != "gorilla" {
		t.Fatalf("gorilla: got %q, %v; want the echo", p, err)
	}

	st := s.Stats()
	if st.ConnsOpen != 3 || st.TLSConnsOpen != 2 || st.PlainConnsOpen() != 1 ||
		st.TLSConnsTotal != 2 || st.PlainConnsTotal() != 1 || st.TLSHandshakes != 2 {
		t.Fatalf("stats: got %d open (%d TLS, %d plain), %d TLS and %d plain accepted, %d handshakes; "+
			"want 3 (2, 1), 2 and 1, 2", st.ConnsOpen, st.TLSConnsOpen, st.PlainConnsOpen(),
			st.TLSConnsTotal, st.PlainConnsTotal(), st.TLSHandshakes)
	}
	pw.CloseNormally()
	tw.CloseNormally()
	_ = gc.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	for range 3 {
		if ci := h.waitClose(t); ci.code != 1000 {
			t.Fatalf("OnClose: got %+v; want 1000", ci)
		}
	}
	eventually(t, "every connection to close", func() bool {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.TLSConnsOpen == 0
	})
}

// TestTLSOnly turns the plain listener off: the TLS listener alone is
// reached at Start and serves.
func TestTLSOnly(t *testing.T) {
	srv, cli := testTLS(t)
	o := testOptions()
	o.Addr = ListenOff
	o.TLS = srv
	o.TLSAddr = "tcp://127.0.0.1:0"
	s := startServer(t, newTestHandler(), o)
	if s.Addr() != nil || s.TLSAddr() == nil {
		t.Fatalf("got Addr %v, TLSAddr %v; want nil and an address", s.Addr(), s.TLSAddr())
	}
	if n := s.unbound(); n != 0 {
		t.Fatalf("%d loops not reached at Start", n)
	}
	w := wstest.NewClient(t, dialTLSAt(t, s.TLSAddr(), cli))
	w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("only")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("only"))
	w.CloseNormally()
	if st := s.Stats(); st.TLSConnsTotal != 1 || st.ConnsTotal != 1 {
		t.Fatalf("stats: got %d accepted, %d of them TLS; want 1, 1", st.ConnsTotal, st.TLSConnsTotal)
	}
}

// TestSingleTLSListener keeps the single listener of Options.TLS without
// TLSAddr: Addr and TLSAddr are the same.
func TestSingleTLSListener(t *testing.T) {
	s, _, _ := startTLSEcho(t, testOptions())
	if s.Addr() == nil || s.TLSAddr() == nil || s.Addr().String() != s.TLSAddr().String() {
		t.Fatalf("got Addr %v, TLSAddr %v; want the same address", s.Addr(), s.TLSAddr())
	}
	p := startServer(t, newTestHandler(), testOptions())
	if p.TLSAddr() != nil {
		t.Fatalf("got TLSAddr %v without TLS; want nil", p.TLSAddr())
	}
}

// TestTwoListenersBusy names both addresses when one cannot be bound.
func TestTwoListenersBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, _ := testTLS(t)
	o := testOptions()
	o.TLS = srv
	o.TLSAddr = ln.Addr().String()
	s, err := New(newTestHandler(), o)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	var op *net.OpError
	if !errors.As(err, &op) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Start: got %v; want a listen error naming %s", err, ln.Addr())
	}
}
