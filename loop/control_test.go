//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// controlHandler is a testHandler that records the pings and pongs of its
// connections and answers each ping with a text message, written on the
// loop after the loop's own pong.
type controlHandler struct {
	*testHandler
	pings, pongs chan []byte
}

func newControlHandler() *controlHandler {
	return &controlHandler{testHandler: newTestHandler(), pings: make(chan []byte, 16), pongs: make(chan []byte, 16)}
}

func (h *controlHandler) OnPing(c Conn, p []byte) {
	h.pings <- append([]byte(nil), p...)
	_ = c.Write(ws.OpText, append([]byte("saw ping "), p...))
}

func (h *controlHandler) OnPong(c Conn, p []byte) { h.pongs <- append([]byte(nil), p...) }

func expectControl(t *testing.T, ch chan []byte, what string, want []byte) {
	t.Helper()
	select {
	case p := <-ch:
		if !bytes.Equal(p, want) {
			t.Fatalf("%s: got %q; want %q", what, p, want)
		}
	case <-time.After(testTimeout):
		t.Fatalf("%s: not called", what)
	}
}

// TestControlHandler: a Handler that implements ControlHandler sees a
// client's ping after the loop answered it, and the pong that answers a
// ping the server sent with Conn.Send.
func TestControlHandler(t *testing.T) {
	h := newControlHandler()
	s := startServer(t, h, testOptions())
	w := dialWS(t, s)

	w.Write(msg(ws.OpPing, []byte("p1")))
	w.ExpectPong([]byte("p1"))
	w.ExpectMessage(ws.OpText, []byte("saw ping p1"))
	expectControl(t, h.pings, "OnPing", []byte("p1"))

	eventually(t, "OnOpen", func() bool { return h.opened.Load() == 1 })
	h.mu.Lock()
	c := h.conns[0]
	h.mu.Unlock()
	if err := c.Send(ws.OpPing, []byte("t1")); err != nil { // from this goroutine
		t.Fatal(err)
	}
	w.ExpectMessage(ws.OpPing, []byte("t1"))
	w.Write(msg(ws.OpPong, []byte("t1")))
	expectControl(t, h.pongs, "OnPong", []byte("t1"))

	w.Write(msg(ws.OpPong, nil)) // unsolicited (RFC 6455 §5.5.3): reported too
	expectControl(t, h.pongs, "OnPong", []byte{})
	w.Write(msg(ws.OpText, []byte("still open")))
	w.ExpectMessage(ws.OpText, []byte("still open"))
	w.CloseNormally()
	if len(h.pings)+len(h.pongs) != 0 {
		t.Fatalf("%d pings and %d pongs left over", len(h.pings), len(h.pongs))
	}
}

// TestControlHandlerKeepalive: with a ControlHandler, the pong that answers
// the server's keepalive ping still clears its deadline (the next ping
// comes, not a close) and is reported.
func TestControlHandlerKeepalive(t *testing.T) {
	h := newControlHandler()
	o := testOptions()
	o.PingInterval = 100 * time.Millisecond
	o.PongTimeout = 5 * time.Second // a ping left unanswered gets no successor but a close
	s := startServer(t, h, o)
	w := dialWS(t, s)
	for range 2 {
		w.ExpectMessage(ws.OpPing, []byte{})
		w.Write(msg(ws.OpPong, nil))
		expectControl(t, h.pongs, "OnPong", []byte{})
	}
	w.CloseNormally()
	if st := s.Stats(); st.PongTimeouts != 0 || st.PingsSent < 2 {
		t.Fatalf("got %d pong timeouts, %d pings; want 0 and at least 2", st.PongTimeouts, st.PingsSent)
	}
}
