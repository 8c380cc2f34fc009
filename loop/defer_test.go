//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// deferHandler defers every handshake on /later and hands the Conn to the
// test on waiting; other paths behave as testHandler's.
func deferHandler(h *testHandler) chan Conn {
	waiting := make(chan Conn, 4096)
	h.onRequest = func(r *Request, d *Decision) bool {
		switch string(r.Head.Path()) {
		case "/later":
			d.Defer()
			waiting <- r.Conn
			return true
		case "/later-plain":
			d.Defer()
			return true
		}
		return false
	}
	return waiting
}

// resolved runs Resolve and reports ok.
func resolved(c Conn, fill func(*Decision)) bool {
	res := make(chan bool, 1)
	c.Resolve(func(d *Decision, ok bool) {
		if ok {
			fill(d)
		}
		res <- ok
	})
	select {
	case ok := <-res:
		return ok
	case <-time.After(testTimeout):
		panic("Resolve never called decide")
	}
}

// inbound returns the number of bytes c's loop holds unread for c, read
// on that loop.
func inbound(t *testing.T, s *Server, c Conn) int {
	t.Helper()
	n := make(chan int, 1)
	if err := s.Execute(c.LoopIndex(), func() { n <- c.c.gc.InboundBuffered() }); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	select {
	case v := <-n:
		return v
	case <-time.After(testTimeout):
		t.Fatal("the loop did not run the task")
		return 0
	}
}

func waitConn(t *testing.T, ch chan Conn) Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(testTimeout):
		t.Fatal("no deferred request")
	}
	return Conn{}
}

// TestDeferUpgrade: a deferred handshake completes when resolved from
// another goroutine; the frames the client sent before the 101 are neither
// lost nor parsed as a request, and come through after it.
func TestDeferUpgrade(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	// OnOpen's message comes before the frames that waited.
	h.onOpen = func(c Conn) { _ = c.Write(ws.OpText, []byte("welcome")) }
	s := startServer(t, h, testOptions())
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/later"), text("early one"))
	c := waitConn(t, waiting)
	// More bytes while waiting, in pieces, one that looks like a request.
	w.Write(text("GET / HTTP/1.1\r\n\r\n"))
	w.WriteChopped(text("early three"), 3, time.Millisecond)
	eventually(t, "the handshake waiting", func() bool { return s.Stats().Waiting == 1 })
	// Every frame sent so far has reached the loop, which holds it unread.
	early := len(text("early one")) + len(text("GET / HTTP/1.1\r\n\r\n")) + len(text("early three"))
	eventually(t, "the early frames held", func() bool { return inbound(t, s, c) == early })
	if err := c.Send(ws.OpText, []byte("x")); err != ErrNotOpen {
		t.Errorf("Send while waiting: %v, want ErrNotOpen", err)
	}
	if !resolved(c, func(d *Decision) { d.Upgrade([]byte("chat"), nil, 0) }) {
		t.Fatal("decide called with ok false")
	}
	status, head := w.ReadHead()
	if status != 101 || !strings.Contains(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") || !strings.Contains(head, "Sec-WebSocket-Protocol: chat\r\n") {
		t.Fatalf("answer:\n%s", head)
	}
	w.ExpectMessage(ws.OpText, []byte("welcome"))
	w.ExpectMessage(ws.OpText, []byte("early one"))
	w.ExpectMessage(ws.OpText, []byte("GET / HTTP/1.1\r\n\r\n"))
	w.ExpectMessage(ws.OpText, []byte("early three"))
	w.Write(text("after"))
	w.ExpectMessage(ws.OpText, []byte("after"))
	// A second Resolve finds nothing waiting.
	if resolved(c, func(d *Decision) { t.Error("decide called twice with ok") }) {
		t.Error("second Resolve had ok true")
	}
	st := s.Stats()
	if st.Deferred != 1 || st.Waiting != 0 || st.HandshakesOK != 1 {
		t.Errorf("stats: deferred %d waiting %d ok %d", st.Deferred, st.Waiting, st.HandshakesOK)
	}
	w.CloseNormally()
}

// TestDeferReject: the decision refuses; the answer is written and the
// connection closed.
func TestDeferReject(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	s := startServer(t, h, testOptions())
	for _, c := range []struct {
		fill   func(*Decision)
		status int
		body   string
	}{
		{func(d *Decision) { d.Reject(403, "go away") }, 403, "go away"},
		{func(d *Decision) { d.Reject(401, "") }, 401, "Unauthorized"},
		{func(d *Decision) {}, 404, ""},
		{func(d *Decision) { d.Defer() }, 500, "The server could not answer this request."},
		{func(d *Decision) { d.Respond(200, "", "text/plain", []byte("plain")) }, 200, "plain"},
		{func(d *Decision) { d.RequireUpgrade() }, 426, ""},
	} {
		w := dialRaw(t, s)
		w.Write(upgradeRequest("/later"), text("never read"))
		conn := waitConn(t, waiting)
		if !resolved(conn, c.fill) {
			t.Fatal("decide called with ok false")
		}
		status, _ := w.ReadHead()
		if status != c.status {
			t.Errorf("status %d, want %d", status, c.status)
		}
		rest := readAll(t, w)
		if !strings.Contains(rest, c.body) {
			t.Errorf("%d: body %q, want %q in it", status, rest, c.body)
		}
	}
	// A plain request cannot be deferred.
	w := dialRaw(t, s)
	w.Write([]byte("GET /later-plain HTTP/1.1\r\nHost: x\r\n\r\n"))
	if status, _ := w.ReadHead(); status != 500 {
		t.Errorf("plain deferred: %d, want 500", status)
	}
	if st := s.Stats(); st.Waiting != 0 || st.HandshakesOK != 0 {
		t.Errorf("waiting %d ok %d", st.Waiting, st.HandshakesOK)
	}
}

// TestDeferTimeout: the handshake timeout still applies while waiting (408);
// a later Resolve is told the request no longer waits.
func TestDeferTimeout(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	o := testOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	s := startServer(t, h, o)
	w := dialRaw(t, s)
	start := time.Now()
	w.Write(upgradeRequest("/later"))
	c := waitConn(t, waiting)
	if status, _ := w.ReadHead(); status != 408 {
		t.Fatalf("status %d, want 408", status)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Errorf("408 after %v, want about 200ms", el)
	}
	if resolved(c, func(*Decision) { t.Error("decide with ok after the timeout") }) {
		t.Error("ok after the timeout")
	}
	if st := s.Stats(); st.HandshakeTimeouts != 1 || st.Waiting != 0 {
		t.Errorf("timeouts %d waiting %d", st.HandshakeTimeouts, st.Waiting)
	}
}

// TestDeferGone: the client leaves, or sends too much, while waiting.
func TestDeferGone(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	s := startServer(t, h, testOptions())

	w := dialRaw(t, s)
	w.Write(upgradeRequest("/later"))
	c := waitConn(t, waiting)
	_ = w.Conn.Close()
	eventually(t, "connection gone", func() bool { return s.Stats().ConnsOpen == 0 })
	if resolved(c, func(*Decision) { t.Error("decide with ok after the client left") }) {
		t.Error("ok after the client left")
	}

	w = dialRaw(t, s)
	w.Write(upgradeRequest("/later"))
	c = waitConn(t, waiting)
	w.Write(text(strings.Repeat("x", MaxWaitInput)))
	if status, _ := w.ReadHead(); status != 400 {
		t.Errorf("status %d, want 400", status)
	}
	if resolved(c, func(*Decision) { t.Error("decide with ok after 400") }) {
		t.Error("ok after 400")
	}
	if st := s.Stats(); st.Waiting != 0 {
		t.Errorf("waiting %d", st.Waiting)
	}
}

// TestDeferDrain: a drain answers waiting handshakes 503, and a Resolve
// after the server stopped runs decide on the caller's goroutine.
func TestDeferDrain(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	s, err := New(h, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	w := dialRaw(t, s)
	w.Write(upgradeRequest("/later"))
	c := waitConn(t, waiting)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if status, _ := w.ReadHead(); status != 503 {
		t.Errorf("status %d, want 503", status)
	}
	_ = w.Conn.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resolved(c, func(*Decision) { t.Error("decide with ok after the stop") }) {
		t.Error("ok after the stop")
	}
}

// TestDeferLoopResponsive: a thousand handshakes wait on a one-loop server
// while an open connection keeps echoing with low latency; then they are
// all resolved, in any order, from several goroutines.
func TestDeferLoopResponsive(t *testing.T) {
	h := newTestHandler()
	waiting := deferHandler(h)
	o := testOptions()
	o.NumLoops = 1
	s := startServer(t, h, o)
	echo := dialWS(t, s)

	const n = 1000
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, s)
		clients[i].Write(upgradeRequest("/later"))
	}
	conns := make([]Conn, n)
	for i := range conns {
		conns[i] = waitConn(t, waiting)
	}
	eventually(t, "all waiting", func() bool { return s.Stats().Waiting == n })
	var rtts []time.Duration
	for range 200 {
		start := time.Now()
		echo.Write(text("ping"))
		echo.ExpectMessage(ws.OpText, []byte("ping"))
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	p99 := rtts[len(rtts)*99/100]
	t.Logf("echo round trip with %d handshakes waiting: p50 %v p99 %v", n, rtts[len(rtts)/2], p99)
	if p99 > 100*time.Millisecond {
		t.Errorf("echo p99 %v with handshakes waiting", p99)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				conns[i].Resolve(func(d *Decision, ok bool) {
					if ok {
						d.Upgrade(nil, nil, 0)
					}
				})
			}
		}()
	}
	wg.Wait()
	for _, w := range clients {
		w.ExpectSwitching()
	}
	eventually(t, "all open", func() bool { return s.Stats().WebSocketsOpen == n+1 })
}
