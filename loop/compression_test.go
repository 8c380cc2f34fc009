//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"

	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/parser"
)

// deflateOffer is the offer of the raw-socket tests.
const deflateOffer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

// deflateResponse is the extension value the server answers it with.
const deflateResponse = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"

// negotiateDeflate upgrades a WebSocket handshake, with permessage-deflate
// when the client offers it; false for a request that is not one.
func negotiateDeflate(r *Request, d *Decision, threshold int) bool {
	if !r.WebSocket {
		return false
	}
	it := r.Head.Extensions()
	p, ok, err := deflate.Negotiate(&it, deflate.Config{})
	if err != nil {
		d.RejectError(err.(*parser.Error))
		return true
	}
	d.Upgrade(nil, nil, 0)
	if ok {
		d.Deflate(p, deflate.DefaultLevel, threshold)
	}
	return true
}

// startDeflate starts an echo server that agrees to permessage-deflate,
// compressing messages of threshold bytes or more, with h (new when nil).
func startDeflate(t *testing.T, h *testHandler, threshold int, maxMessage int64) (*Server, *testHandler) {
	if h == nil {
		h = newTestHandler()
	}
	h.onRequest = func(r *Request, d *Decision) bool { return negotiateDeflate(r, d, threshold) }
	o := testOptions()
	o.MaxMessage = maxMessage
	return startServer(t, h, o), h
}

// dialDeflate connects to s and completes a handshake that offers
// permessage-deflate, checking that the 101 accepts it.
func dialDeflate(t *testing.T, s *Server) *wsClient {
	t.Helper()
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/ws", deflateOffer))
	status, head := w.ReadHead()
	if status != 101 || !strings.Contains(head, deflateResponse) {
		t.Fatalf("handshake answer:\n%s\nwant 101 with %q", head, deflateResponse)
	}
	return w
}

// compressed returns msg compressed as a permessage-deflate payload.
func compressed(t testing.TB, msg []byte) []byte {
	z, err := deflate.NewCompressor(deflate.DefaultLevel, 15)
	if err != nil {
		t.Fatal(err)
	}
	out, err := z.Compress(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inflated inflates a permessage-deflate payload with the library alone.
func inflated(t testing.TB, payload []byte) []byte {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflating the server's payload: %v", err)
	}
	return out
}

// jsonLike returns about n bytes of JSON-like text.
func jsonLike(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n-80; i++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"user%d","text":"hello é %d","ok":true},`, i, i%7, i*31)
	}
	b.WriteString(`{"end":true}]`)
	return b.Bytes()
}

// TestDeflateGorillaEcho: gorilla negotiates permessage-deflate with no
// context takeover and compresses everything it sends, in frames of at
// most its 4 KiB buffer (so the large messages arrive fragmented, RSV1 on
// the first frame only); the server inflates, echoes and compresses what
// is at least 100 bytes.
func TestDeflateGorillaEcho(t *testing.T) {
	s, _ := startDeflate(t, nil, 100, 4<<20)
	d := websocket.Dialer{HandshakeTimeout: testTimeout, EnableCompression: true}
	c, resp, err := d.Dial("ws://"+s.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate; server_no_context_takeover; client_no_context_takeover" {
		t.Fatalf("extensions %q", got)
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	c.SetReadLimit(4 << 20)
	for _, n := range []int{0, 1, 200, 2 << 10, 64 << 10, 1 << 20} {
		for i, p := range [][]byte{jsonLike(n)[:n], pattern(n, false)} {
			typ := []int{websocket.TextMessage, websocket.BinaryMessage}[i]
			if n < 100 {
				p = pattern(n, true)
			}
			if err := c.WriteMessage(typ, p); err != nil {
				t.Fatal(err)
			}
			gt, got, err := c.ReadMessage()
			if err != nil || gt != typ || !bytes.Equal(got, p) {
				t.Fatalf("size %d type %d: got type %d, %d bytes, %v; want the message echoed", n, typ, gt, len(got), err)
			}
		}
	}
	gorillaFragmented(t, c) // explicitly fragmented
	if st := s.Stats(); st.ProtocolErrors != 0 {
		t.Fatalf("got %d protocol errors; want 0", st.ProtocolErrors)
	}
}

// TestDeflateThreshold reads the server's frames off a raw socket: RSV1 is
// set on an echo of the threshold or more, and clear below it; the client
// sends compressed and uncompressed messages, fragmented or not.
func TestDeflateThreshold(t *testing.T) {
	s, _ := startDeflate(t, nil, 100, 0)
	w := dialDeflate(t, s)
	big := jsonLike(2 << 10)
	z := compressed(t, big)
	cases := []struct {
		name   string
		frames [][]byte
		op     ws.OpCode
		want   []byte
		rsv    byte
	}{
		{"plain small", [][]byte{clientFrame(ws.OpText, true, 0, []byte("hi"))}, ws.OpText, []byte("hi"), 0},
		{"compressed small", [][]byte{clientFrame(ws.OpText, true, 4, compressed(t, []byte("hi")))}, ws.OpText, []byte("hi"), 0},
		{"99 bytes", [][]byte{clientFrame(ws.OpBinary, true, 0, pattern(99, false))}, ws.OpBinary, pattern(99, false), 0},
		{"100 bytes", [][]byte{clientFrame(ws.OpBinary, true, 0, pattern(100, false))}, ws.OpBinary, pattern(100, false), 4},
		{"plain large", [][]byte{clientFrame(ws.OpText, true, 0, big)}, ws.OpText, big, 4},
		{"compressed large", [][]byte{clientFrame(ws.OpText, true, 4, z)}, ws.OpText, big, 4},
		{"compressed fragmented", [][]byte{
			clientFrame(ws.OpText, false, 4, z[:10]),
			clientFrame(ws.OpPing, true, 0, []byte("p")),
			clientFrame(ws.OpContinuation, false, 0, z[10:20]),
			clientFrame(ws.OpContinuation, true, 0, z[20:]),
		}, ws.OpText, big, 4},
		{"empty compressed", [][]byte{clientFrame(ws.OpBinary, true, 4, []byte{0})}, ws.OpBinary, []byte{}, 0},
	}
	for i, tc := range cases {
		w.Write(tc.frames...)
		f, err := readServerFrame(w.R)
		if err == nil && f.Op == ws.OpPong {
			f, err = readServerFrame(w.R)
		}
		if err != nil {
			t.Fatalf("#%d %s: %v", i, tc.name, err)
		}
		p := f.Payload
		if f.Rsv == 4 {
			p = inflated(t, p)
		}
		if !f.Fin || f.Op != tc.op || f.Rsv != tc.rsv || !bytes.Equal(p, tc.want) {
			t.Fatalf("#%d %s: got %v; want op %d rsv %d with the %d bytes sent", i, tc.name, f, tc.op, tc.rsv, len(tc.want))
		}
	}
	w.CloseNormally()
}

// TestDeflateSend: Send from another goroutine compresses too.
func TestDeflateSend(t *testing.T) {
	opened := make(chan Conn, 1)
	h := newTestHandler()
	h.onOpen = func(c Conn) { opened <- c }
	s, _ := startDeflate(t, h, 100, 0)
	w := dialDeflate(t, s)
	c := <-opened
	big := jsonLike(3000)
	for i, tc := range []struct {
		p   []byte
		rsv byte
	}{{[]byte("small"), 0}, {big, 4}, {pattern(70000, false), 4}} {
		if err := c.Send(ws.OpBinary, tc.p); err != nil {
			t.Fatal(err)
		}
		f, err := readServerFrame(w.R)
		if err != nil {
			t.Fatal(err)
		}
		p := f.Payload
		if f.Rsv == 4 {
			p = inflated(t, p)
		}
		if f.Rsv != tc.rsv || !bytes.Equal(p, tc.p) {
			t.Fatalf("#%d: got %v; want rsv %d and the %d bytes sent", i, f, tc.rsv, len(tc.p))
		}
	}
	w.CloseNormally()
}

// TestDeflateBadInput: each violation closes with its code.
func TestDeflateBadInput(t *testing.T) {
	s, h := startDeflate(t, nil, 100, 64<<10)
	bomb := compressed(t, make([]byte, 1<<20))
	cases := []struct {
		name      string
		negotiate bool
		frames    [][]byte
		code      ws.StatusCode
	}{
		{"RSV1 without negotiation", false, [][]byte{clientFrame(ws.OpText, true, 4, compressed(t, []byte("x")))}, 1002},
		{"RSV1 on a continuation", true, [][]byte{
			clientFrame(ws.OpBinary, false, 4, []byte{}),
			clientFrame(ws.OpContinuation, true, 4, compressed(t, []byte("x"))),
		}, 1002},
		{"RSV1 on a ping", true, [][]byte{clientFrame(ws.OpPing, true, 4, nil)}, 1002},
		{"RSV2", true, [][]byte{clientFrame(ws.OpBinary, true, 2, nil)}, 1002},
		{"corrupt data", true, [][]byte{clientFrame(ws.OpBinary, true, 4, []byte{0xff, 0xff})}, 1007},
		{"empty compressed payload", true, [][]byte{clientFrame(ws.OpBinary, true, 4, nil)}, 1007},
		{"bomb over MaxMessage", true, [][]byte{clientFrame(ws.OpBinary, true, 4, bomb)}, 1009},
		{"compressed invalid UTF-8", true, [][]byte{clientFrame(ws.OpText, true, 4, compressed(t, []byte("ok \xff\xfe")))}, 1007},
	}
	if len(bomb) > 8<<10 {
		t.Fatalf("the bomb is %d bytes; want a small payload", len(bomb))
	}
	for i, tc := range cases {
		var w *wsClient
		if tc.negotiate {
			w = dialDeflate(t, s)
		} else {
			w = dialWS(t, s)
		}
		w.Write(tc.frames...)
		w.ExpectClose(tc.code)
		if ci := h.waitClose(t); ci.code != tc.code {
			t.Fatalf("#%d %s: got OnClose code %d (%v); want %d", i, tc.name, ci.code, ci.err, tc.code)
		}
	}
}

// TestDeflateDecisionChecked: an agreement the loop cannot honour (the
// client keeping its context) is answered 500, not a 101.
func TestDeflateDecisionChecked(t *testing.T) {
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool {
		it := r.Head.Extensions()
		p, _, _ := deflate.Negotiate(&it, deflate.Config{ContextTakeover: true})
		d.Upgrade(nil, nil, 0)
		d.Deflate(p, deflate.DefaultLevel, 0)
		return true
	}
	s := startServer(t, h, testOptions())
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/ws", "Sec-WebSocket-Extensions: permessage-deflate"))
	if status, head := w.ReadHead(); status != 500 {
		t.Fatalf("got %d:\n%s\nwant 500", status, head)
	}
}

// TestDeflateTLS: the same over TLS, whose records feed the same decoder:
// gorilla's compressed echo, then corrupt data closed with 1007.
func TestDeflateTLS(t *testing.T) {
	srv, cli := testTLS(t)
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool { return negotiateDeflate(r, d, 100) }
	o := testOptions()
	o.TLS = srv
	s := startServer(t, h, o)

	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: cli, EnableCompression: true}
	c, resp, err := d.Dial("wss://"+s.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
		t.Fatalf("extensions %q; want permessage-deflate", got)
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	for i, n := range []int{0, 200, 2 << 10, 100 << 10} {
		p := jsonLike(n + 100)[:n]
		if err := c.WriteMessage(websocket.TextMessage, p); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, p) {
			t.Fatalf("#%d: got type %d, %d bytes, %v; want %d bytes echoed", i, typ, len(got), err, n)
		}
	}

	w := &wsClient{wstest.NewClient(t, dialTLS(t, s, cli))}
	w.Write(upgradeRequest("/ws", deflateOffer))
	if status, head := w.ReadHead(); status != 101 || !strings.Contains(head, deflateResponse) {
		t.Fatalf("handshake answer:\n%s\nwant 101 with %q", head, deflateResponse)
	}
	w.Write(clientFrame(ws.OpBinary, true, 4, []byte{0xff, 0xff}))
	w.ExpectClose(1007)
}

// TestConnCompresses reads the agreement from another goroutine, after
// OnOpen handed the connections over: a client that offered a 10-bit
// window, one that offered nothing, each checked per opcode and size.
func TestConnCompresses(t *testing.T) {
	opened := make(chan Conn, 2)
	h := newTestHandler()
	h.onOpen = func(c Conn) { opened <- c }
	s, _ := startDeflate(t, h, 100, 0)
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/ws", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10"))
	if status, head := w.ReadHead(); status != 101 || !strings.Contains(head, "server_max_window_bits=10") {
		t.Fatalf("handshake answer:\n%s\nwant 101 with server_max_window_bits=10", head)
	}
	zc := <-opened
	w2 := dialRaw(t, s)
	w2.Write(upgradeRequest("/ws"))
	if status, _ := w2.ReadHead(); status != 101 {
		t.Fatalf("status %d", status)
	}
	pc := <-opened

	if cz := zc.Compression(); !cz.Enabled || cz.Level != deflate.DefaultLevel || cz.Threshold != 100 || cz.Params.ServerMaxWindowBits() != 10 {
		t.Errorf("Compression() = %+v; want enabled, level %d, threshold 100, 10 window bits", cz, deflate.DefaultLevel)
	}
	if cz := pc.Compression(); cz != (Compression{}) {
		t.Errorf("Compression() without deflate = %+v; want the zero value", cz)
	}
	for i, tc := range []struct {
		c          Conn
		op         ws.OpCode
		n          int
		level, bit int
		ok         bool
	}{
		{zc, ws.OpText, 100, deflate.DefaultLevel, 10, true},
		{zc, ws.OpBinary, 1 << 20, deflate.DefaultLevel, 10, true},
		{zc, ws.OpText, 99, 0, 0, false},
		{zc, ws.OpPing, 100, 0, 0, false},
		{zc, ws.OpContinuation, 100, 0, 0, false},
		{pc, ws.OpText, 1 << 20, 0, 0, false},
	} {
		level, bits, ok := tc.c.Compresses(tc.op, tc.n)
		if level != tc.level || bits != tc.bit || ok != tc.ok {
			t.Errorf("#%d: got (%d, %d, %v); want (%d, %d, %v)", i, level, bits, ok, tc.level, tc.bit, tc.ok)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _, _ = zc.Compresses(ws.OpText, 200) }); a != 0 {
		t.Errorf("Compresses allocates %v times; want 0", a)
	}
	w.CloseNormally()
	w2.CloseNormally()
}
