package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// reuseHandler hands the Conns of a Custom route to the test.
type reuseHandler struct {
	opened chan Conn
	closed chan Conn
}

func (h *reuseHandler) OnOpen(c Conn, _ *Request)             { h.opened <- c }
func (h *reuseHandler) OnMessage(Conn, OpCode, []byte)        {}
func (h *reuseHandler) OnClose(c Conn, _ StatusCode, _ error) { h.closed <- c }

// TestConnHandleReuse: the state of an ended connection serves the next
// one of its event loop, and the first connection's Conn then answers as
// for an ended connection: it sends nothing, closes nothing and reports
// nothing of the second.
func TestConnHandleReuse(t *testing.T) {
	h := &reuseHandler{opened: make(chan Conn, 2), closed: make(chan Conn, 2)}
	cfg := testConfig(Route{Path: "/c", Behaviour: Custom, Subprotocols: []string{"chat"}})
	cfg.Loops = 1
	g := startGateway(t, cfg, WithHandler(h))
	wait := func(ch chan Conn) Conn {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(testTimeout):
			t.Fatal("no callback")
			return Conn{}
		}
	}

	a := dial(t, g, "/c", nil)
	ha := wait(h.opened)
	ha.SetData("a")
	if ha.Route() != "/c" || ha.Data() != "a" || ha.Closed() {
		t.Fatalf("open connection: route %q, data %v, closed %v", ha.Route(), ha.Data(), ha.Closed())
	}
	_ = a.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	wait(h.closed)

	d := websocket.Dialer{Subprotocols: []string{"chat"}, HandshakeTimeout: testTimeout}
	b, _, err := d.Dial(wsURL(g, "/c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hb := wait(h.opened)
	if ha.s != hb.s {
		t.Fatal("the second connection did not reuse the first one's state")
	}
	ha.SetData("stale") // must not reach b
	cases := []struct {
		name      string
		got, want any
	}{
		{"Send", ha.Send(OpText, []byte("stale")), ErrClosed},
		{"Close", ha.Close(4001, "stale"), ErrClosed},
		{"Ping", ha.Ping(nil), ErrClosed},
		{"Closed", ha.Closed(), true},
		{"Route", ha.Route(), ""},
		{"Subprotocol", ha.Subprotocol(), ""},
		{"Data", ha.Data(), nil},
		{"Request", ha.Request() == nil, true},
		{"second Data", hb.Data(), nil},
		{"second Subprotocol", hb.Subprotocol(), "chat"},
		{"second Route", hb.Route(), "/c"},
		{"second Closed", hb.Closed(), false},
		{"ID", ha.ID() != hb.ID(), true},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("#%d %s: got %v; want %v", i, tc.name, tc.got, tc.want)
		}
	}
	if c, ok := g.Conn(ha.ID()); ok || !c.IsZero() {
		t.Error("the gateway still finds the first connection")
	}
	if c, ok := g.Conn(hb.ID()); !ok || c != hb {
		t.Error("the gateway does not find the second connection's handle")
	}
	if err := g.Send(ha.ID(), OpText, nil); !errors.Is(err, ErrUnknownConn) {
		t.Errorf("Gateway.Send to the first connection: got %v; want %v", err, ErrUnknownConn)
	}
	if err := hb.Send(OpText, []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(testTimeout))
	if _, p, err := b.ReadMessage(); err != nil || string(p) != "fresh" {
		t.Fatalf("second connection read %q, %v; want only its own message", p, err)
	}
}
