//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// testTimeout bounds every blocking step of a test client.
const testTimeout = 10 * time.Second

// closeInfo is one Handler.OnClose call.
type closeInfo struct {
	id   uint64
	code ws.StatusCode
	err  error
}

// testHandler is the echo handler of the tests. Routes:
//
//	/ws, /           WebSocket (subprotocols "chat", "superchat"), 426 otherwise
//	/healthz         200 "ok\n"
//	/forbidden       403
//	anything else    404
//
// Messages are echoed unless onMessage is set.
type testHandler struct {
	onRequest func(r *Request, d *Decision) bool // true: handled
	onMessage func(c *Conn, op ws.OpCode, p []byte)
	onOpen    func(c *Conn)

	opened atomic.Int64
	closes chan closeInfo

	mu    sync.Mutex
	conns []*Conn
}

func newTestHandler() *testHandler {
	return &testHandler{closes: make(chan closeInfo, 4096)}
}

func (h *testHandler) OnRequest(r *Request, d *Decision) {
	if h.onRequest != nil && h.onRequest(r, d) {
		return
	}
	switch string(r.Head.Path()) {
	case "/ws", "/":
		if !r.WebSocket {
			d.RequireUpgrade()
			return
		}
		sub, err := r.Head.SelectSubprotocol([]string{"chat", "superchat"})
		if err != nil {
			d.RejectError(err.(*parser.Error))
			return
		}
		d.Upgrade(sub, nil, 0)
	case "/healthz":
		d.Respond(200, "", "text/plain; charset=utf-8", []byte("ok\n"))
	case "/forbidden":
		d.Reject(403, "forbidden")
	default:
		d.Reject(404, "")
	}
}

func (h *testHandler) OnOpen(c *Conn) {
	h.opened.Add(1)
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	if h.onOpen != nil {
		h.onOpen(c)
	}
}

func (h *testHandler) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	if h.onMessage != nil {
		h.onMessage(c, op, p)
		return
	}
	_ = c.Send(op, p)
}

func (h *testHandler) OnClose(c *Conn, code ws.StatusCode, err error) {
	select {
	case h.closes <- closeInfo{c.ID(), code, err}:
	default:
	}
}

// waitClose returns the next OnClose call.
func (h *testHandler) waitClose(t testing.TB) closeInfo {
	t.Helper()
	select {
	case ci := <-h.closes:
		return ci
	case <-time.After(testTimeout):
		t.Fatal("no OnClose within the test timeout")
		return closeInfo{}
	}
}

// testOptions are fast timers and two loops; tests override what they test.
func testOptions() Options {
	return Options{
		Addr:             "tcp://127.0.0.1:0",
		NumLoops:         2,
		TimerResolution:  10 * time.Millisecond,
		HandshakeTimeout: 5 * time.Second,
		IdleTimeout:      -1,
		PingInterval:     -1,
		CloseTimeout:     2 * time.Second,
		DrainTimeout:     2 * time.Second,
	}
}

// startServer starts a server for the test and shuts it down at cleanup.
func startServer(t testing.TB, h Handler, o Options) *Server {
	t.Helper()
	s, err := New(h, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func startEcho(t testing.TB) (*Server, *testHandler) {
	h := newTestHandler()
	return startServer(t, h, testOptions()), h
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// upgradeRequest is a minimal valid WebSocket handshake for path.
func upgradeRequest(path string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path)
	b.WriteString("Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// clientFrame encodes a masked client frame. rsv is in ws.Header.Rsv form
// (RSV1 = 4).
func clientFrame(op ws.OpCode, fin bool, rsv byte, payload []byte) []byte {
	return clientFrameMask(op, fin, rsv, payload, [4]byte{0x37, 0xfa, 0x21, 0x3d})
}

func clientFrameMask(op ws.OpCode, fin bool, rsv byte, payload []byte, mask [4]byte) []byte {
	b0 := byte(op) | rsv<<4
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, mask[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= mask[i&3]
	}
	return out
}

// msg is a whole unfragmented masked message.
func msg(op ws.OpCode, payload []byte) []byte { return clientFrame(op, true, 0, payload) }

func closePayload(code ws.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// rframe is a frame read from the server.
type rframe struct {
	fin     bool
	rsv     byte
	op      ws.OpCode
	payload []byte
}

func (f rframe) String() string {
	p := f.payload
	if len(p) > 32 {
		p = p[:32]
	}
	return fmt.Sprintf("{fin:%v rsv:%d op:%d len:%d %q}", f.fin, f.rsv, f.op, len(f.payload), p)
}

func (f rframe) closeCode() ws.StatusCode {
	if len(f.payload) < 2 {
		return ws.StatusNoStatusRcvd
	}
	return ws.StatusCode(binary.BigEndian.Uint16(f.payload))
}

// readServerFrame reads one frame and checks the server rules: no mask.
func readServerFrame(br *bufio.Reader) (rframe, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return rframe{}, err
	}
	f := rframe{fin: h[0]&0x80 != 0, rsv: h[0] >> 4 & 7, op: ws.OpCode(h[0] & 0xf)}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(br, f.payload)
	return f, err
}

// wsClient is a raw-socket WebSocket client for the conformance tests.
type wsClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, s *Server) *wsClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

// dialWS connects and completes the handshake on /ws.
func dialWS(t testing.TB, s *Server) *wsClient {
	t.Helper()
	w := dialRaw(t, s)
	w.write(upgradeRequest("/ws"))
	w.expectSwitching()
	return w
}

func (w *wsClient) write(b ...[]byte) {
	w.t.Helper()
	if _, err := w.c.Write(bytes.Join(b, nil)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// writeChopped writes b in pieces of chop bytes with a pause between them.
func (w *wsClient) writeChopped(b []byte, chop int, pause time.Duration) {
	w.t.Helper()
	for len(b) > 0 {
		n := min(chop, len(b))
		if _, err := w.c.Write(b[:n]); err != nil {
			w.t.Fatalf("write: %v", err)
		}
		b = b[n:]
		if pause > 0 && len(b) > 0 {
			time.Sleep(pause)
		}
	}
}

// readHead reads a response head and returns its status line and fields.
func (w *wsClient) readHead() (status int, head string) {
	w.t.Helper()
	var sb strings.Builder
	for {
		line, err := w.br.ReadString('\n')
		if err != nil {
			w.t.Fatalf("reading response head: %v (so far %q)", err, sb.String())
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	head = sb.String()
	if _, err := fmt.Sscanf(head, "HTTP/1.1 %d", &status); err != nil {
		w.t.Fatalf("bad status line in %q", head)
	}
	return status, head
}

func (w *wsClient) expectSwitching() {
	w.t.Helper()
	status, head := w.readHead()
	if status != 101 {
		w.t.Fatalf("status %d, want 101:\n%s", status, head)
	}
	if !strings.Contains(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") {
		w.t.Fatalf("bad accept key:\n%s", head)
	}
}

func (w *wsClient) next() rframe {
	w.t.Helper()
	f, err := readServerFrame(w.br)
	if err != nil {
		w.t.Fatalf("reading frame: %v", err)
	}
	if f.rsv != 0 {
		w.t.Fatalf("server frame with RSV bits: %v", f)
	}
	return f
}

func (w *wsClient) expectMessage(op ws.OpCode, payload []byte) {
	w.t.Helper()
	f := w.next()
	if f.op != op || !f.fin || !bytes.Equal(f.payload, payload) {
		w.t.Fatalf("got %v, want op %d with %d bytes %q", f, op, len(payload), trunc(payload))
	}
}

func (w *wsClient) expectPong(payload []byte) {
	w.t.Helper()
	w.expectMessage(ws.OpPong, payload)
}

// expectClose reads the server's close frame, checks its code, then
// expects the server to end TCP cleanly (EOF, no reset).
func (w *wsClient) expectClose(code ws.StatusCode) {
	w.t.Helper()
	f := w.next()
	if f.op != ws.OpClose {
		w.t.Fatalf("got %v, want a close frame with %d", f, code)
	}
	if got := f.closeCode(); got != code {
		w.t.Fatalf("close code %d (%q), want %d", got, f.payload, code)
	}
	if len(f.payload) > 2 && !frame.ValidUTF8(f.payload[2:]) {
		w.t.Fatalf("close reason is not UTF-8: %q", f.payload)
	}
	w.expectEOF()
}

// expectEOF expects the server to have closed its side (no more bytes),
// then closes the client's side as a WebSocket client does.
func (w *wsClient) expectEOF() {
	w.t.Helper()
	var b [1]byte
	n, err := w.br.Read(b[:])
	if n != 0 || err != io.EOF {
		w.t.Fatalf("want EOF, got %d bytes (%q), %v", n, b[:n], err)
	}
	_ = w.c.Close()
}

// closeNormally runs a client-initiated close handshake.
func (w *wsClient) closeNormally() {
	w.t.Helper()
	w.write(msg(ws.OpClose, closePayload(ws.StatusNormalClosure, "bye")))
	w.expectClose(ws.StatusNormalClosure)
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// pattern returns n deterministic bytes; text is ASCII when text is true.
func pattern(n int, text bool) []byte {
	b := make([]byte, n)
	for i := range b {
		if text {
			b[i] = 'a' + byte(i%26)
		} else {
			b[i] = byte(i*31 + 7)
		}
	}
	return b
}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
