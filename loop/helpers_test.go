//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/parser"
)

// testTimeout bounds every blocking step of a test client.
const testTimeout = testutil.Timeout

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
	onMessage func(c Conn, op ws.OpCode, p []byte)
	onOpen    func(c Conn)

	opened atomic.Int64
	closes chan closeInfo

	mu    sync.Mutex
	conns []Conn
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

func (h *testHandler) OnOpen(c Conn) {
	h.opened.Add(1)
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	if h.onOpen != nil {
		h.onOpen(c)
	}
}

func (h *testHandler) OnMessage(c Conn, op ws.OpCode, p []byte) {
	if h.onMessage != nil {
		h.onMessage(c, op, p)
		return
	}
	_ = c.Write(op, p)
}

func (h *testHandler) OnClose(c Conn, code ws.StatusCode, err error) {
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

// Shared helpers, under the short names the tests of this package use.
var (
	upgradeRequest  = wstest.UpgradeRequest
	clientFrame     = wstest.ClientFrame
	clientFrameMask = wstest.ClientFrameMask
	msg             = wstest.Message // a whole unfragmented masked message
	closePayload    = wstest.ClosePayload
	readServerFrame = wstest.ReadFrame
	pattern         = wstest.Pattern
	eventually      = testutil.Eventually
)

// wsClient is a raw-socket WebSocket client for the conformance tests; the
// files of the tests add the methods they share.
type wsClient struct{ *wstest.Client }

// dialRaw connects to s without a handshake.
func dialRaw(t testing.TB, s *Server) *wsClient {
	t.Helper()
	return &wsClient{wstest.Dial(t, s.Addr().String())}
}

// dialWS connects and completes the handshake on /ws.
func dialWS(t testing.TB, s *Server) *wsClient {
	t.Helper()
	return &wsClient{wstest.DialWS(t, s.Addr().String(), "/ws")}
}
