//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
)

// TestHandshakeAndFramesInOneWrite is the case event-loop servers get
// wrong: the client sends its handshake and first frames in one write(2),
// so they arrive in one read; every message must be echoed.
func TestHandshakeAndFramesInOneWrite(t *testing.T) {
	s, _ := startEcho(t)
	w := dialRaw(t, s)
	var frames [][]byte
	var want [][]byte
	for i := range 50 {
		p := pattern(i*37%300, i%2 == 0)
		op := ws.OpBinary
		if i%2 == 0 {
			op = ws.OpText
		}
		frames = append(frames, msg(op, p))
		want = append(want, p)
	}
	frames = append(frames, msg(ws.OpPing, []byte("after-handshake")))
	w.Write(append([][]byte{upgradeRequest("/ws")}, frames...)...)
	w.ExpectSwitching()
	for i, p := range want {
		op := ws.OpBinary
		if i%2 == 0 {
			op = ws.OpText
		}
		w.ExpectMessage(op, p)
	}
	w.ExpectPong([]byte("after-handshake"))
	w.CloseNormally()
}

// TestByteAtATime feeds the handshake and the frames one byte per write.
func TestByteAtATime(t *testing.T) {
	s, _ := startEcho(t)
	w := dialRaw(t, s)
	all := [][]byte{upgradeRequest("/ws"), msg(ws.OpText, []byte("hello")),
		msg(ws.OpBinary, pattern(300, false)), msg(ws.OpPing, []byte("p")),
		clientFrame(ws.OpText, false, 0, []byte("frag")), clientFrame(ws.OpContinuation, true, 0, []byte("mented"))}
	w.WriteChopped(bytes.Join(all, nil), 1, 100*time.Microsecond)
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("hello"))
	w.ExpectMessage(ws.OpBinary, pattern(300, false))
	w.ExpectPong([]byte("p"))
	w.ExpectMessage(ws.OpText, []byte("fragmented"))
	w.WriteChopped(msg(ws.OpClose, closePayload(1000, "")), 1, 100*time.Microsecond)
	w.ExpectClose(1000)
}

// readAll reads a whole HTTP response until EOF; the server must end the
// connection cleanly (EOF, not a reset) after an error response.
func readAll(t *testing.T, w *wsClient) string {
	t.Helper()
	b, err := io.ReadAll(w.R)
	if err != nil {
		t.Fatalf("reading until EOF: %v (got %q)", err, b)
	}
	return string(b)
}

func TestPlainHTTP(t *testing.T) {
	s, _ := startEcho(t)
	w := dialRaw(t, s)
	// Two pipelined keep-alive requests, then one asking to close.
	w.Write([]byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"))
	for range 2 {
		status, head := w.ReadHead()
		if status != 200 || strings.Contains(head, "Connection: close") {
			t.Fatalf("got %d:\n%s", status, head)
		}
		body := make([]byte, 3)
		if _, err := io.ReadFull(w.R, body); err != nil || string(body) != "ok\n" {
			t.Fatalf("body %q, %v", body, err)
		}
	}
	w.Write([]byte("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
	resp := readAll(t, w)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK\r\n") || !strings.Contains(resp, "Connection: close\r\n") || !strings.HasSuffix(resp, "\r\n\r\nok\n") {
		t.Fatalf("response %q", resp)
	}
}

// TestErrorResponses checks the precise statuses and that the client reads
// the whole response before EOF, even when it sent more bytes the server
// never reads (which would make a plain close send a reset).
func TestErrorResponses(t *testing.T) {
	s, _ := startEcho(t)
	cases := []struct {
		name, req string
		status    int
		contains  []string
	}{
		{"upgrade-only", "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", 426, []string{"Upgrade: websocket\r\n", "Sec-WebSocket-Version: 13\r\n"}},
		{"not-found", "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404, nil},
		{"forbidden", "GET /forbidden HTTP/1.1\r\nHost: a\r\n\r\n", 403, []string{"forbidden"}},
		{"bad-version", strings.Replace(string(upgradeRequest("/ws")), "Version: 13", "Version: 8", 1), 426, []string{"Sec-WebSocket-Version: 13\r\n"}},
		{"bad-key", strings.Replace(string(upgradeRequest("/ws")), wstest.Key, "short", 1), 400, nil},
		{"post-upgrade", strings.Replace(string(upgradeRequest("/ws")), "GET", "POST", 1), 405, []string{"Allow: GET\r\n"}},
		{"no-host", "GET /ws HTTP/1.1\r\n\r\n", 400, nil},
		{"bare-lf", "GET / HTTP/1.1\nHost: a\n\n", 400, nil},
		{"http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, nil},
		{"too-large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431, nil},
		{"uri-too-long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, nil},
		{"bad-subprotocol", string(upgradeRequest("/ws", "Sec-WebSocket-Protocol: chat, (bad)")), 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dialRaw(t, s)
			// Trailing garbage the server will not read.
			w.Write([]byte(tc.req), bytes.Repeat([]byte("x"), 100<<10))
			resp := readAll(t, w)
			prefix := "HTTP/1.1 " + strconv.Itoa(tc.status) + " "
			if !strings.HasPrefix(resp, prefix) {
				t.Fatalf("response %.32q, want %s", resp, prefix)
			}
			i := strings.Index(resp, "\r\n\r\n")
			j := strings.Index(resp, "Content-Length: ")
			if i < 0 || j < 0 {
				t.Fatalf("no head or length in %q", resp)
			}
			n, err := strconv.Atoi(resp[j+16 : j+strings.Index(resp[j:], "\r\n")])
			if err != nil || len(resp)-i-4 != n {
				t.Fatalf("body length mismatch in %q", resp)
			}
			for _, c := range tc.contains {
				if !strings.Contains(resp, c) {
					t.Fatalf("response %q lacks %q", resp, c)
				}
			}
		})
	}
	snap := s.Stats()
	if snap.Rejected[426] != 2 || snap.Rejected[400] != 4 || snap.Rejected[431] != 1 {
		t.Fatalf("rejections %v", snap.Rejected)
	}
}

func TestSubprotocolAndContext(t *testing.T) {
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool {
		r.Conn.SetContext("route:" + string(r.Head.Path()))
		return false
	}
	h.onMessage = func(c Conn, op ws.OpCode, p []byte) {
		_ = c.Send(op, []byte(c.Context().(string)))
	}
	s := startServer(t, h, testOptions())
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/ws", "Sec-WebSocket-Protocol: x, superchat, chat"))
	_, head := w.ReadHead()
	if !strings.Contains(head, "Sec-WebSocket-Protocol: superchat\r\n") {
		t.Fatalf("head %q", head)
	}
	w.Write(msg(ws.OpText, []byte("?")))
	w.ExpectMessage(ws.OpText, []byte("route:/ws"))
	w.CloseNormally()
	ci := h.waitClose(t)
	if ci.code != 1000 || ci.err != nil {
		t.Fatalf("OnClose %+v", ci)
	}
}

// TestConnHandleAfterClose: a handle outliving its connection returns
// errors, never panics, from any goroutine.
func TestConnHandleAfterClose(t *testing.T) {
	s, h := startEcho(t)
	w := dialWS(t, s)
	w.CloseNormally()
	h.waitClose(t)
	h.mu.Lock()
	c := h.conns[0]
	h.mu.Unlock()
	if c.Send(ws.OpText, []byte("x")) != ErrClosed || c.SendFrame([]byte{0x81, 0}) != ErrClosed || c.Close(1000, "") != ErrClosed {
		t.Fatal("closed handle did not return ErrClosed")
	}
	if c.RemoteAddr() == nil || c.ID() == 0 {
		t.Fatal("handle lost its identity")
	}
	if err := c.Send(ws.OpClose, nil); err != ErrOpCode {
		t.Fatalf("Send(close) = %v", err)
	}
	if err := c.Close(1005, ""); err != ErrCloseCode {
		t.Fatalf("Close(1005) = %v", err)
	}
}

// TestPlainHTTPWithBody: a request body is not read, so the connection
// closes after the response (the client still reads all of it).
func TestPlainHTTPWithBody(t *testing.T) {
	s, _ := startEcho(t)
	w := dialRaw(t, s)
	w.Write([]byte("POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"))
	resp := readAll(t, w)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK\r\n") || !strings.Contains(resp, "Connection: close\r\n") || !strings.HasSuffix(resp, "ok\n") {
		t.Fatalf("response %q", resp)
	}
}

// TestBroadcastSendFrame: one encoded frame, shared by every receiver,
// sent from another goroutine and from a loop.
func TestBroadcastSendFrame(t *testing.T) {
	h := newTestHandler()
	const n = 100
	shared := serverFrame(ws.OpText, []byte("to everyone"))
	h.onMessage = func(c Conn, op ws.OpCode, p []byte) {
		// From a loop: send to every connection, some on other loops.
		h.mu.Lock()
		conns := append([]Conn(nil), h.conns...)
		h.mu.Unlock()
		for _, o := range conns {
			if err := o.SendFrame(shared); err != nil {
				panic(err)
			}
		}
	}
	s := startServer(t, h, testOptions())
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dialWS(t, s)
	}
	eventually(t, "every OnOpen", func() bool { return h.opened.Load() == n })
	h.mu.Lock()
	conns := append([]Conn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		if err := c.SendFrame(shared); err != nil {
			t.Fatal(err)
		}
	}
	clients[0].Write(text("go"))
	for _, w := range clients {
		w.ExpectMessage(ws.OpText, []byte("to everyone"))
		w.ExpectMessage(ws.OpText, []byte("to everyone"))
		w.CloseNormally()
	}
	if got := s.Stats().MessagesOut; got != 2*n {
		t.Fatalf("MessagesOut = %d", got)
	}
}

// recorder logs Handler calls in order.
type recorder struct {
	nopHandler
	log    []string
	onMsg  func(c Conn)
	closed []error
}

func (r *recorder) OnMessage(c Conn, op ws.OpCode, p []byte) {
	r.log = append(r.log, "message "+string(p))
	if r.onMsg != nil {
		r.onMsg(c)
	}
	r.log = append(r.log, "message end")
}

func (r *recorder) OnClose(c Conn, code ws.StatusCode, err error) {
	r.log = append(r.log, "close "+strconv.FormatUint(c.ID(), 10))
	r.closed = append(r.closed, err)
}

// TestOnCloseNotNested: when a Send made inside OnMessage fails and gnet
// closes that connection on the spot, its OnClose runs after OnMessage
// returns, never nested in it.
func TestOnCloseNotNested(t *testing.T) {
	r := &recorder{}
	s, fc := fakeServer(t, r)
	other := newFakeConn(fc.el)
	ev(s).OnOpen(other)
	other.feed(upgradeRequest("/ws"))
	ev(s).OnTraffic(other)
	d := other.ctx.(*conn).handle()
	r.onMsg = func(Conn) {
		other.failWrite = true
		_ = d.Send(ws.OpText, []byte("doomed"))
		if d.Send(ws.OpText, []byte("again")) != ErrClosed {
			t.Error("send to a closed connection succeeded")
		}
	}
	fc.feed(msg(ws.OpText, []byte("hi")))
	ev(s).OnTraffic(fc)
	want := []string{"message hi", "message end", "close " + strconv.FormatUint(d.ID(), 10)}
	if strings.Join(r.log, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", r.log, want)
	}
	if len(r.closed) != 1 || r.closed[0] == nil {
		t.Fatalf("OnClose errors %v", r.closed)
	}
}

// TestZeroConn: a Conn the loop did not make reports ErrNotOpen.
func TestZeroConn(t *testing.T) {
	var c Conn
	if c.Send(ws.OpText, nil) != ErrNotOpen || c.SendFrame([]byte{0x81, 0}) != ErrNotOpen || c.Close(1000, "") != ErrNotOpen {
		t.Fatal("zero Conn")
	}
	c.SetContext(1)
	if c.Context() != nil || c.ID() != 0 || c.RemoteAddr() != nil || !c.IsZero() || c.Write(ws.OpText, nil) != ErrNotOpen {
		t.Fatal("zero Conn accessors")
	}
}

// TestConcurrentServers: servers of one process start, serve and stop at
// the same time (under -race: gnet's engine state is per engine, its
// default logger is under its own lock).
func TestConcurrentServers(t *testing.T) {
	const n = 4
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newTestHandler()
			s, err := New(h, testOptions())
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Start(); err != nil {
				t.Error(err)
				return
			}
			c, err := net.Dial("tcp", s.Addr().String())
			if err == nil {
				_, err = c.Write(upgradeRequest("/ws"))
				if err == nil {
					var b [12]byte
					_, err = io.ReadFull(c, b[:])
					if err == nil && string(b[:]) != "HTTP/1.1 101" {
						err = fmt.Errorf("answer %q", b[:])
					}
				}
				_ = c.Close()
			}
			if err != nil {
				t.Error(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
