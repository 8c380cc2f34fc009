package gateway

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/loop"
)

type control struct {
	c Conn
	p []byte
}

// presence is a Handler that implements PingHandler and PongHandler: it
// records the control frames and answers each ping with a message.
type presence struct {
	nopHandler
	opens        chan Conn
	pings, pongs chan control
}

func newPresence() *presence {
	return &presence{opens: make(chan Conn, 4), pings: make(chan control, 16), pongs: make(chan control, 16)}
}

func (h *presence) OnOpen(c Conn, _ *Request) { h.opens <- c }

func (h *presence) OnPing(c Conn, p []byte) {
	h.pings <- control{c, bytes.Clone(p)}
	_ = c.Write(OpText, append([]byte("here: "), p...)) // on the loop
}

func (h *presence) OnPong(c Conn, p []byte) { h.pongs <- control{c, bytes.Clone(p)} }

// TestPingPongHandler sends a ping from a gorilla client, which the
// gateway answers before OnPing sees it, and pings the client with
// Conn.Ping, whose pong comes back to OnPong with its time stamp.
func TestPingPongHandler(t *testing.T) {
	h := newPresence()
	g := startGateway(t, testConfig(
		Route{Path: "/live", Behaviour: Custom, Handler: h},
		Route{Path: "/quiet", Behaviour: Custom, Handler: nopHandler{}},
	))
	if _, ok := g.loopHandler().(loop.ControlHandler); !ok {
		t.Fatal("the loop gets no ControlHandler for a route Handler with OnPing")
	}
	ws := dial(t, g, "/live", nil)
	c := recv(t, h.opens)
	pongs := make(chan string, 4)
	ws.SetPongHandler(func(p string) error { pongs <- p; return nil })
	msgs := make(chan string, 4)
	go func() { // gorilla answers pings while it reads
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(m)
		}
	}()

	if err := ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, pongs); p != "are you there" {
		t.Fatalf("pong: got %q; want the ping's payload", p)
	}
	if m := recv(t, msgs); m != "here: are you there" {
		t.Fatalf("message: got %q; want OnPing's answer", m)
	}
	if p := recv(t, h.pings); p.c != c || string(p.p) != "are you there" {
		t.Fatalf("OnPing: got %q", p.p)
	}

	sent := time.Now()
	if err := c.Ping(strconv.AppendInt(nil, sent.UnixNano(), 10)); err != nil { // from the test's goroutine
		t.Fatal(err)
	}
	p := recv(t, h.pongs)
	ns, err := strconv.ParseInt(string(p.p), 10, 64)
	if p.c != c || err != nil || ns != sent.UnixNano() {
		t.Fatalf("OnPong: got %q; want %d", p.p, sent.UnixNano())
	}
	if rtt := time.Since(time.Unix(0, ns)); rtt < 0 || rtt > testTimeout {
		t.Fatalf("round trip %v", rtt)
	}
	if err := c.Ping(make([]byte, 126)); err != ErrControlTooLong {
		t.Fatalf("Ping with 126 bytes: got %v; want ErrControlTooLong", err)
	}

	// A route whose Handler implements neither sees nothing, and its
	// pings are still answered.
	quiet := dial(t, g, "/quiet", nil)
	quietPongs := make(chan string, 1)
	quiet.SetPongHandler(func(p string) error { quietPongs <- p; return nil })
	if err := quiet.WriteControl(websocket.PingMessage, []byte("q"), time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _, _ = quiet.ReadMessage() }()
	if p := recv(t, quietPongs); p != "q" {
		t.Fatalf("pong on /quiet: got %q", p)
	}
	if len(h.pings)+len(h.pongs) != 0 {
		t.Fatalf("%d pings, %d pongs of /quiet reported to /live's Handler", len(h.pings), len(h.pongs))
	}
}

// TestPingPongNoHook: a gateway whose Handlers implement neither hook
// gives the loop no ControlHandler.
func TestPingPongNoHook(t *testing.T) {
	for i, routes := range [][]Route{
		{{Path: "/c", Behaviour: Custom, Handler: nopHandler{}}},
		{{Path: "/e", Behaviour: Echo}, {Path: "/p/{topic}", Behaviour: PubSub}},
	} {
		g, err := New(testConfig(routes...), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := g.loopHandler().(loop.ControlHandler); ok {
			t.Errorf("#%d: got a ControlHandler; want none", i)
		}
	}
}
