//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestHandshakeTimeout(t *testing.T) {
	o := testOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	s := startServer(t, newTestHandler(), o)
	check := func(t *testing.T, w *wsClient, start time.Time) {
		resp := readAll(t, w)
		if !strings.HasPrefix(resp, "HTTP/1.1 408 Request Timeout\r\n") {
			t.Fatalf("response %q", resp)
		}
		if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	}
	t.Run("silent", func(t *testing.T) {
		start := time.Now()
		check(t, dialRaw(t, s), start)
	})
	t.Run("partial-head", func(t *testing.T) {
		start := time.Now()
		w := dialRaw(t, s)
		w.Write([]byte("GET /ws HTTP/1.1\r\nHost: a\r\n"))
		check(t, w, start)
	})
	t.Run("slowloris", func(t *testing.T) {
		// A byte every 20 ms does not extend the deadline.
		start := time.Now()
		w := dialRaw(t, s)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range []byte("GET /ws HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("a", 1000)) {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := w.Conn.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		check(t, w, start)
	})
	t.Run("idle-keep-alive", func(t *testing.T) {
		w := dialRaw(t, s)
		start := time.Now() // the deadline starts later, at the response
		w.Write([]byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"))
		if status, _ := w.ReadHead(); status != 200 {
			t.Fatal(status)
		}
		if b, err := w.R.Discard(3); err != nil {
			t.Fatal(b, err)
		}
		if rest := readAll(t, w); rest != "" {
			t.Fatalf("idle keep-alive connection got %q", rest)
		}
		if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	if n := s.Stats().HandshakeTimeouts; n != 3 {
		t.Fatalf("HandshakeTimeouts = %d", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 200 * time.Millisecond
	h := newTestHandler()
	s := startServer(t, h, o)
	w := dialWS(t, s)
	// Traffic keeps the connection alive past the timeout: the pauses let
	// 400 ms pass, twice the timeout, with a message every 50 ms.
	var start time.Time
	for range 8 {
		time.Sleep(50 * time.Millisecond)
		start = time.Now() // the idle deadline runs from the last input
		w.Write(text("still here"))
		w.ExpectMessage(ws.OpText, []byte("still here"))
	}
	f := w.Next()
	if f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway {
		t.Fatalf("got %v, want close 1001", f)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle close after %v", d)
	}
	w.Write(msg(ws.OpClose, closePayload(ws.StatusGoingAway, "")))
	w.ExpectEOF()
	if ci := h.waitClose(t); ci.code != ws.StatusGoingAway || ci.err != ErrIdleTimeout {
		t.Fatalf("OnClose %+v", ci)
	}
}

func TestPingPongDeadline(t *testing.T) {
	o := testOptions()
	o.PingInterval = 100 * time.Millisecond
	o.PongTimeout = 200 * time.Millisecond
	h := newTestHandler()
	s := startServer(t, h, o)
	w := dialWS(t, s)
	// A silent client that answers pings stays connected.
	for range 3 {
		f := w.Next()
		if f.Op != ws.OpPing {
			t.Fatalf("got %v, want a ping", f)
		}
		w.Write(msg(ws.OpPong, f.Payload))
	}
	// One that stops answering is dropped after PongTimeout.
	f := w.Next()
	if f.Op != ws.OpPing {
		t.Fatalf("got %v, want a ping", f)
	}
	start := time.Now()
	// The drop is announced: a close frame, then EOF without waiting for
	// the peer's answer.
	if f := w.Next(); f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway || string(f.Payload[2:]) != "pong timeout" {
		t.Fatalf("got %v, want close 1001 \"pong timeout\"", f)
	}
	if _, err := readServerFrame(w.R); err != io.EOF {
		t.Fatalf("want EOF after the pong deadline, got %v", err)
	}
	// start is when the ping arrived, a little after the deadline began.
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("dropped after %v", d)
	}
	if ci := h.waitClose(t); ci.code != ws.StatusGoingAway || ci.err != ErrPongTimeout {
		t.Fatalf("OnClose %+v", ci)
	}
	if snap := s.Stats(); snap.PingsSent < 4 || snap.PongTimeouts != 1 {
		t.Fatalf("pings %d, pong timeouts %d", snap.PingsSent, snap.PongTimeouts)
	}
}

// TestServerClose: the server starts the close handshake from the loop and
// from another goroutine; the client answers and the server ends TCP. A
// client that does not answer is dropped after CloseTimeout.
func TestServerClose(t *testing.T) {
	h := newTestHandler()
	h.onMessage = func(c Conn, op ws.OpCode, p []byte) {
		switch string(p) {
		case "bye":
			_ = c.Send(ws.OpText, []byte("last words"))
			if err := c.Close(4000, "server bye"); err != nil {
				panic(err)
			}
			if c.Send(ws.OpText, []byte("x")) != ErrClosed || c.Close(4000, "") != ErrClosed {
				panic("sends after Close must fail")
			}
		case "bye-async":
			go func() {
				_ = c.Send(ws.OpText, []byte("last words"))
				_ = c.Close(4001, "server bye")
			}()
		}
	}
	o := testOptions()
	o.CloseTimeout = 300 * time.Millisecond
	s := startServer(t, h, o)
	for _, tc := range []struct {
		msg  string
		code ws.StatusCode
	}{{"bye", 4000}, {"bye-async", 4001}} {
		t.Run(tc.msg, func(t *testing.T) {
			w := dialWS(t, s)
			w.Write(text(tc.msg))
			w.ExpectMessage(ws.OpText, []byte("last words"))
			f := w.Next()
			if f.Op != ws.OpClose || f.CloseCode() != tc.code || string(f.Payload[2:]) != "server bye" {
				t.Fatalf("got %v", f)
			}
			w.Write(msg(ws.OpClose, f.Payload[:2]))
			w.ExpectEOF()
			if ci := h.waitClose(t); ci.code != tc.code || ci.err != nil {
				t.Fatalf("OnClose %+v", ci)
			}
		})
	}
	t.Run("no-answer", func(t *testing.T) {
		w := dialWS(t, s)
		w.Write(text("bye"))
		w.ExpectMessage(ws.OpText, []byte("last words"))
		if f := w.Next(); f.Op != ws.OpClose {
			t.Fatalf("got %v", f)
		}
		start := time.Now()
		if _, err := readServerFrame(w.R); err != io.EOF {
			t.Fatalf("want EOF, got %v", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Fatalf("dropped after %v", d)
		}
		if ci := h.waitClose(t); ci.code != 4000 || ci.err != ErrCloseTimeout {
			t.Fatalf("OnClose %+v", ci)
		}
	})
}

// TestSlowConsumer: a peer that does not read is closed with 1008 once its
// outbound queue passes MaxOutbound, whether the sender runs on the loop or
// not, and the sender learns it from Send.
func TestSlowConsumer(t *testing.T) {
	const maxOut = 256 << 10
	chunk := pattern(16<<10, false)
	var mu sync.Mutex
	sent := map[string]int{}
	h := newTestHandler()
	h.onMessage = func(c Conn, op ws.OpCode, p []byte) {
		mode := string(p)
		flood := func() {
			n := 0
			for ; n < 100000; n++ {
				if err := c.Send(ws.OpBinary, chunk); err != nil {
					if !errors.Is(err, ErrSlowConsumer) && !errors.Is(err, ErrClosed) {
						panic(err)
					}
					break
				}
			}
			mu.Lock()
			sent[mode] = n
			mu.Unlock()
		}
		if mode == "loop" {
			flood()
		} else {
			go flood()
		}
	}
	o := testOptions()
	o.MaxOutbound = maxOut
	o.SocketSendBuffer = 64 << 10
	o.CloseTimeout = 5 * time.Second
	s := startServer(t, h, o)
	for i, mode := range []string{"loop", "async"} {
		t.Run(mode, func(t *testing.T) {
			w := dialWS(t, s)
			_ = w.Conn.(*net.TCPConn).SetReadBuffer(64 << 10)
			w.Write(text(mode))
			eventually(t, "the flood to stop", func() bool {
				mu.Lock()
				defer mu.Unlock()
				_, ok := sent[mode]
				return ok
			})
			mu.Lock()
			n := sent[mode]
			mu.Unlock()
			// Kernel buffers take some; the server holds at most about
			// MaxOutbound plus a message.
			if n*len(chunk) > maxOut+4<<20 {
				t.Fatalf("%d bytes accepted before the slow consumer was cut", n*len(chunk))
			}
			got := 0
			for {
				f := w.Next()
				if f.Op == ws.OpClose {
					if f.CloseCode() != ws.StatusPolicyViolation {
						t.Fatalf("close %v", f)
					}
					break
				}
				if f.Op != ws.OpBinary || len(f.Payload) != len(chunk) {
					t.Fatalf("got %v", f)
				}
				got++
			}
			if got != n {
				t.Fatalf("read %d messages before the close, %d were accepted", got, n)
			}
			w.Write(msg(ws.OpClose, closePayload(ws.StatusPolicyViolation, "")))
			w.ExpectEOF()
			if ci := h.waitClose(t); ci.code != ws.StatusPolicyViolation || ci.err != ErrSlowConsumer {
				t.Fatalf("OnClose %+v", ci)
			}
			if n := s.Stats().SlowConsumers; n != uint64(i+1) {
				t.Fatalf("SlowConsumers = %d", n)
			}
		})
	}
}

// TestShutdownDrain: Shutdown delivers what was sent before it, then 1001
// to every client; it refuses new connections and returns within the drain
// timeout even when a client never answers.
func TestShutdownDrain(t *testing.T) {
	h := newTestHandler()
	o := testOptions()
	o.DrainTimeout = 1 * time.Second
	o.CloseTimeout = 5 * time.Second
	s := startServer(t, h, o)
	const clients = 20
	ws_ := make([]*wsClient, clients)
	for i := range ws_ {
		ws_[i] = dialWS(t, s)
	}
	eventually(t, "every OnOpen", func() bool { return h.opened.Load() == clients })
	idleHTTP := dialRaw(t, s)
	idleHTTP.Write([]byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"))
	if status, _ := idleHTTP.ReadHead(); status != 200 {
		t.Fatal(status)
	}
	if b, err := idleHTTP.R.Discard(3); err != nil {
		t.Fatal(b, err)
	}
	// Queue messages from other goroutines, then drain at once.
	h.mu.Lock()
	conns := append([]Conn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		for k := range 100 {
			if err := c.Send(ws.OpText, []byte(itoa(k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()

	var wg sync.WaitGroup
	for i, w := range ws_ {
		if i == 0 {
			continue // this one never answers the close
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.T = &tErrorf{t: t}
			for k := range 100 {
				f, err := readServerFrame(w.R)
				if err != nil || f.Op != ws.OpText || string(f.Payload) != itoa(k) {
					t.Errorf("message %d: %v %v", k, f, err)
					return
				}
			}
			f, err := readServerFrame(w.R)
			if err != nil || f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway {
				t.Errorf("want close 1001, got %v %v", f, err)
				return
			}
			_, _ = w.Conn.Write(msg(ws.OpClose, closePayload(ws.StatusGoingAway, "")))
			if _, err := readServerFrame(w.R); err != io.EOF {
				t.Errorf("want EOF, got %v", err)
			}
			_ = w.Conn.Close()
		}()
	}
	wg.Wait()
	// The idle HTTP connection was ended.
	if b, err := io.ReadAll(idleHTTP.R); err != nil || len(b) != 0 {
		t.Fatalf("idle HTTP connection: %q %v", b, err)
	}
	// New connections are refused while draining.
	if c, err := net.Dial("tcp", s.Addr().String()); err == nil {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		_, _ = c.Write(upgradeRequest("/ws"))
		if b, _ := io.ReadAll(c); strings.HasPrefix(string(b), "HTTP/1.1 101") {
			t.Fatal("a new connection was upgraded during the drain")
		}
		_ = c.Close()
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < o.DrainTimeout-50*time.Millisecond || d > o.DrainTimeout+time.Second {
		t.Fatalf("Shutdown took %v with a drain timeout of %v", d, o.DrainTimeout)
	}
	codes := map[error]int{}
	for range clients {
		ci := h.waitClose(t)
		codes[ci.err]++
		if ci.code != ws.StatusGoingAway {
			t.Fatalf("OnClose %+v", ci)
		}
	}
	if codes[ErrShutdown] != clients {
		t.Fatalf("OnClose errors %v", codes)
	}
}

// TestShutdownQuick: with every client answering, Shutdown returns as soon
// as the handshakes are done.
func TestShutdownQuick(t *testing.T) {
	o := testOptions()
	o.DrainTimeout = 5 * time.Second
	s := startServer(t, newTestHandler(), o)
	w := dialWS(t, s)
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	f := w.Next()
	if f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway {
		t.Fatalf("got %v", f)
	}
	w.Write(msg(ws.OpClose, closePayload(ws.StatusGoingAway, "")))
	w.ExpectEOF()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("engine still running after Shutdown")
	}
}

// tErrorf turns Fatalf into Errorf for helpers used off the test goroutine.
type tErrorf struct {
	testing.TB
	t *testing.T
}

func (e *tErrorf) Helper()                      {}
func (e *tErrorf) Fatalf(f string, args ...any) { e.t.Errorf(f, args...) }
