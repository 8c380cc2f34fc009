package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type opened struct {
	c Conn
	r *Request
}

type closed struct {
	c    Conn
	code StatusCode
	err  error
}

type message struct {
	c  Conn
	op OpCode
	p  []byte
}

// recorder is a Handler that records its calls, greets each connection
// from OnOpen and refuses handshakes without the right token.
type recorder struct {
	opens  chan opened
	msgs   chan message
	closes chan closed
}

func newRecorder() *recorder {
	return &recorder{opens: make(chan opened, 16), msgs: make(chan message, 16), closes: make(chan closed, 16)}
}

func (h *recorder) OnOpen(c Conn, r *Request) {
	_ = c.Send(OpText, []byte("welcome "+r.Topic))
	h.opens <- opened{c, r}
}

func (h *recorder) OnMessage(c Conn, op OpCode, p []byte) {
	h.msgs <- message{c, op, append([]byte(nil), p...)}
}

func (h *recorder) OnClose(c Conn, code StatusCode, err error) { h.closes <- closed{c, code, err} }

func (h *recorder) Authorize(r *Request) error {
	if r.Header.Get("X-Token") != "secret" {
		return &RejectError{Status: 401, Reason: "bad token"}
	}
	return nil
}

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("handler not called")
		panic("unreachable")
	}
}

func TestCustomHandler(t *testing.T) {
	h := newRecorder()
	g := startGateway(t, testConfig(Route{Path: "/room/{topic}", Behaviour: Custom, Subprotocols: []string{"chat"}}), WithHandler(h))

	d := *dialer
	d.Subprotocols = []string{"other", "chat"}
	hdr := http.Header{"X-Token": {"secret"}, "X-Multi": {"a", "b"}}
	ws, _, err := d.Dial(wsURL(g, "/room/lobby%21?a=1&b=two"), hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	expectMessage(t, ws, websocket.TextMessage, []byte("welcome lobby!"))
	o := recv(t, h.opens)
	c, r := o.c, o.r

	// The request is a copy: it survives further traffic on the loop.
	other, _, err := d.Dial(wsURL(g, "/room/x?zzz=9"), http.Header{"X-Token": {"secret"}, "X-Multi": {"zz"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	recv(t, h.opens)
	if err := ws.WriteMessage(websocket.BinaryMessage, pattern(5000, false)); err != nil {
		t.Fatal(err)
	}
	m := recv(t, h.msgs)
	if m.c != c || m.op != OpBinary || string(m.p) != string(pattern(5000, false)) {
		t.Fatalf("OnMessage got op %d with %d bytes", m.op, len(m.p))
	}
	switch {
	case r.Path != "/room/lobby%21", r.RawQuery != "a=1&b=two", r.Query().Get("b") != "two",
		r.Topic != "lobby!", r.Route != "/room/{topic}", r.Subprotocol != "chat",
		r.Header.Get("X-Token") != "secret", len(r.Header["X-Multi"]) != 2 || r.Header["X-Multi"][1] != "b",
		r.RemoteAddr == nil, r.ClientAddr.String() != "127.0.0.1":
		t.Fatalf("request copy wrong: %+v", r)
	}
	if c.Request() != r || c.Subprotocol() != "chat" || c.Route() != "/room/{topic}" || func() bool { h, ok := g.Conn(c.ID()); return !ok || h != c }() {
		t.Fatal("Conn accessors disagree with the request")
	}
	c.SetData("user-42")
	if c.Data() != "user-42" {
		t.Fatalf("Data %v", c.Data())
	}

	// Send and Close from another goroutine.
	done := make(chan error, 2)
	go func() { done <- c.Send(OpText, []byte("from elsewhere")) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ws, websocket.TextMessage, []byte("from elsewhere"))
	go func() { done <- c.Close(4002, "done") }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectClose(t, ws, 4002)
	cl := recv(t, h.closes)
	if cl.c != c || cl.code != 4002 {
		t.Fatalf("OnClose(%d, %v), want 4002", cl.code, cl.err)
	}
	if !c.Closed() {
		t.Fatal("Closed false after OnClose")
	}
	if err := c.Send(OpText, []byte("late")); err != ErrClosed {
		t.Fatalf("Send after close: %v", err)
	}
	if err := c.Close(1000, ""); err != ErrClosed {
		t.Fatalf("Close after close: %v", err)
	}
	if err := g.Send(c.ID(), OpText, nil); err != ErrUnknownConn {
		t.Fatalf("Gateway.Send after close: %v", err)
	}

	// The Authorizer refuses with its status.
	resp := dialStatus(t, g, "/room/x", nil, 401)
	_ = resp.Body.Close()
	if v := metric(t, g, `upgate_rejections_total{reason="authorize"}`); v != 1 {
		t.Fatalf("authorize rejections %v", v)
	}
}

// TestDebugLog runs connections with debug logging on: the lines carry the
// connection's attributes and there is none per message.
func TestDebugLog(t *testing.T) {
	var lines logLines
	h := newRecorder()
	cfg := testConfig(Route{Path: "/echo", Behaviour: Echo})
	g, err := New(cfg, WithLogger(newTextLogger(&lines)), WithHandler(h))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, g, "/echo", nil)
	for range 10 {
		_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
		expectMessage(t, c, websocket.TextMessage, []byte("x"))
	}
	_ = c.Close()
	eventually(t, "close logged", func() bool { return g.Connections() == 0 })
	if err := shutdownNow(g); err != nil {
		t.Fatal(err)
	}
	out := lines.String()
	for _, want := range []string{"gateway: started", "connection open", "connection closed", "gateway: draining", "gateway: stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n > 12 {
		t.Errorf("%d log lines for one connection and 10 messages:\n%s", n, out)
	}
}
