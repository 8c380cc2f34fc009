//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/testcert"
	"github.com/upgate/upgate/internal/wstest"
)

// testTLS returns a server configuration with a certificate for 127.0.0.1
// signed by a CA made here, and a client configuration trusting that CA.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca, leaf := testcert.Localhost(t)
	return leaf.ServerConfig(), ca.ClientConfig("127.0.0.1")
}

// startTLSEcho starts the echo server over TLS.
func startTLSEcho(t *testing.T, o Options) (*Server, *testHandler, *tls.Config) {
	t.Helper()
	srv, cli := testTLS(t)
	o.TLS = srv
	h := newTestHandler()
	return startServer(t, h, o), h, cli
}

// dialTLS completes a TLS handshake with s.
func dialTLS(t *testing.T, s *Server, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", s.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTLSEchoGorilla(t *testing.T) {
	o := testOptions()
	o.MaxMessage = 1 << 20
	s, h, cli := startTLSEcho(t, o)
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: cli, Subprotocols: []string{"chat"}}
	c, resp, err := d.Dial("wss://"+s.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != 101 || c.Subprotocol() != "chat" {
		t.Fatalf("status %d, subprotocol %q; want 101, chat", resp.StatusCode, c.Subprotocol())
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	c.SetReadLimit(1 << 20)
	// Sizes under one record, over one record (16 KiB), and over gnet's
	// read buffer.
	for i, n := range []int{0, 5, 125, 16 << 10, 100 << 10, 1 << 20} {
		p := pattern(n, true)
		if err := c.WriteMessage(websocket.TextMessage, p); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, p) {
			t.Fatalf("#%d: got type %d, %d bytes, %v; want %d bytes echoed", i, typ, len(got), err, n)
		}
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("close: got %v; want close 1000", err)
	}
	if ci := h.waitClose(t); ci.code != 1000 || ci.err != nil {
		t.Fatalf("OnClose: got %+v; want 1000, nil", ci)
	}
	if st := s.Stats(); st.TLSHandshakes != 1 || st.TLSFailures != 0 {
		t.Fatalf("stats: got %d handshakes, %d failures; want 1, 0", st.TLSHandshakes, st.TLSFailures)
	}
}

// TestTLSPipelined sends the upgrade request and the first frames in one
// TLS write: the bytes behind the head must not be lost, nor those behind
// the client's Finished.
func TestTLSPipelined(t *testing.T) {
	s, h, cli := startTLSEcho(t, testOptions())
	big := pattern(600<<10, false)
	for i, tc := range []struct {
		handshakeFirst bool
		second         []byte
		version        uint16
	}{
		{true, []byte("two"), tls.VersionTLS13},
		{false, []byte("two"), tls.VersionTLS13},
		{false, big, tls.VersionTLS13},
		{true, []byte("two"), tls.VersionTLS12},
		{false, big, tls.VersionTLS12},
	} {
		handshakeFirst := tc.handshakeFirst
		cli := cli.Clone()
		cli.MaxVersion = tc.version
		raw, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(testTimeout))
		c := tls.Client(raw, cli)
		if handshakeFirst {
			if err := c.Handshake(); err != nil {
				t.Fatalf("#%d: handshake: %v", i, err)
			}
		} // else the first Write runs the handshake: data right behind Finished
		w := wstest.NewClient(t, c)
		w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("one")), msg(ws.OpBinary, tc.second))
		w.ExpectSwitching()
		w.ExpectMessage(ws.OpText, []byte("one"))
		w.ExpectMessage(ws.OpBinary, tc.second)
		if v := c.ConnectionState().Version; v != tc.version {
			t.Fatalf("#%d: got version %x; want %x", i, v, tc.version)
		}
		w.CloseNormally()
		if ci := h.waitClose(t); ci.code != 1000 || ci.err != nil {
			t.Fatalf("#%d: OnClose: got %+v; want 1000, nil", i, ci)
		}
	}
}

// TestTLSPlainHTTP sends plain HTTP to the TLS listener: it is answered
// 400 as net/http answers it, the connection is closed and the loop keeps
// serving.
func TestTLSPlainHTTP(t *testing.T) {
	o := testOptions()
	o.NumLoops = 1
	s, _, cli := startTLSEcho(t, o)
	c, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("read: got %v; want EOF or reset", err)
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.0 400 Bad Request\r\n")) {
		t.Fatalf("got %q; want a 400", b)
	}
	eventually(t, "the failure to be counted", func() bool { return s.Stats().TLSFailures == 1 })
	// The same loop still serves TLS.
	w := wstest.NewClient(t, dialTLS(t, s, cli))
	w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("still here")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("still here"))
	w.CloseNormally()
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// TestTLSHandshakeTimeout leaves handshakes unfinished: the handshake
// timeout closes the connections and their goroutines end.
func TestTLSHandshakeTimeout(t *testing.T) {
	o := testOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	s, _, _ := startTLSEcho(t, o)
	base := runtime.NumGoroutine()
	// Half a ClientHello: a record header announcing 512 bytes, and 10.
	partial := append([]byte{22, 3, 1, 2, 0}, make([]byte, 10)...)
	for i, first := range [][]byte{nil, partial} {
		c, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		if len(first) > 0 {
			if _, err := c.Write(first); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		b, err := io.ReadAll(c)
		if len(b) != 0 || (err != nil && !isReset(err)) {
			t.Fatalf("#%d: got %q, %v; want the connection closed", i, b, err)
		}
		if d := time.Since(start); d > testTimeout/2 {
			t.Fatalf("#%d: closed after %v; want about %v", i, d, o.HandshakeTimeout)
		}
		_ = c.Close()
		eventually(t, "the handshake goroutine to end", func() bool { return runtime.NumGoroutine() <= base })
	}
	if st := s.Stats(); st.HandshakeTimeouts != 2 {
		t.Fatalf("handshake timeouts: got %d; want 2", st.HandshakeTimeouts)
	}
}

// TestTLSHandshakeSlots refuses a connection while every handshake slot is
// taken.
func TestTLSHandshakeSlots(t *testing.T) {
	o := testOptions()
	o.MaxTLSHandshakes = 1
	s, _, cli := startTLSEcho(t, o)
	// A silent client and one that sent half a ClientHello take no slot.
	for i, first := range [][]byte{nil, {22, 3, 1, 2, 0, 1, 0}} {
		c, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(first); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
	}
	// A client that sent its ClientHello and stalls holds the only slot.
	stall := stallAfterHello(t, s, cli)
	eventually(t, "the stalled handshake to hold the slot", func() bool { return len(s.tlsSlots) == 1 })
	// The next ClientHello finds no slot: closed, counted.
	c, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if err := tls.Client(c, cli).Handshake(); err == nil {
		t.Fatal("handshake beyond the slots: got nil; want the connection closed")
	}
	if st := s.Stats(); st.TLSRefused != 1 || st.ConnsOpen != 3 {
		t.Fatalf("refused %d, open %d; want 1, 3 (two silent, one stalled)", st.TLSRefused, st.ConnsOpen)
	}
	// The slot comes back once the stalled handshake ends.
	_ = stall.Close()
	eventually(t, "the slot to come back", func() bool { return len(s.tlsSlots) == 0 })
	w := wstest.NewClient(t, dialTLS(t, s, cli))
	w.Write(upgradeRequest("/ws"))
	w.ExpectSwitching()
	w.CloseNormally()
}

// stallAfterHello opens a connection to s whose client sends its
// ClientHello and then reads nothing: the server's handshake waits for the
// client's Finished. Closing the returned connection ends it.
func stallAfterHello(t *testing.T, s *Server, cli *tls.Config) net.Conn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	stuck := &helloOnly{Conn: raw, hold: make(chan struct{})}
	t.Cleanup(stuck.release)
	go func() { _ = tls.Client(stuck, cli).Handshake() }()
	return raw
}

// helloOnly is a client connection whose reads wait until release.
type helloOnly struct {
	net.Conn
	hold chan struct{}
	once sync.Once
}

func (h *helloOnly) Read([]byte) (int, error) {
	<-h.hold
	return 0, io.EOF
}

func (h *helloOnly) release() { h.once.Do(func() { close(h.hold) }) }

// TestTLSDeferSendShutdown runs a deferred decision, sends from another
// goroutine and drains the server, over TLS.
func TestTLSDeferSendShutdown(t *testing.T) {
	srv, cli := testTLS(t)
	o := testOptions()
	o.TLS = srv
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool {
		if string(r.Head.Path()) != "/later" {
			return false
		}
		c := r.Conn
		d.Defer()
		go c.Resolve(func(d *Decision, ok bool) {
			if ok {
				d.Upgrade(nil, nil, 0)
			}
		})
		return true
	}
	s := startServer(t, h, o)
	w := wstest.NewClient(t, dialTLS(t, s, cli))
	// The frame waits with the head for the decision.
	w.Write(upgradeRequest("/later"), msg(ws.OpText, []byte("kept")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("kept"))
	eventually(t, "OnOpen", func() bool { return h.opened.Load() == 1 })
	h.mu.Lock()
	c := h.conns[0]
	h.mu.Unlock()
	go func() { _ = c.Send(ws.OpBinary, []byte("from afar")) }()
	w.ExpectMessage(ws.OpBinary, []byte("from afar"))
	// A stalled handshake must not hold the drain up.
	stall, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	eventually(t, "both connections to open", func() bool { return s.Stats().ConnsOpen == 2 })
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	f := w.Next()
	if f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway {
		t.Fatalf("got %v; want close 1001", f)
	}
	w.Write(msg(ws.OpClose, closePayload(ws.StatusGoingAway, "")))
	w.ExpectEOF()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return")
	}
}

// TestTLSHTTP answers plain HTTP requests inside TLS, two pipelined on a
// keep-alive connection.
func TestTLSHTTP(t *testing.T) {
	s, _, cli := startTLSEcho(t, testOptions())
	w := wstest.NewClient(t, dialTLS(t, s, cli))
	req := []byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
	w.Write(req, req)
	for i := range 2 {
		if status, head := w.ReadHead(); status != 200 {
			t.Fatalf("#%d: got status %d (%q); want 200", i, status, head)
		}
		var body [3]byte
		if _, err := io.ReadFull(w.R, body[:]); err != nil || string(body[:]) != "ok\n" {
			t.Fatalf("#%d: got body %q, %v; want %q", i, body, err, "ok\n")
		}
	}
}
