package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

var echoSizes = []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 100_000, 1 << 20}

func TestEchoGorilla(t *testing.T) {
	g := startGateway(t, testConfig())
	c := dial(t, g, "/echo", nil)
	for _, n := range echoSizes {
		for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			p := pattern(n, typ == websocket.TextMessage)
			if err := c.WriteMessage(typ, p); err != nil {
				t.Fatal(err)
			}
			expectMessage(t, c, typ, p)
		}
	}
	// A burst: many messages in flight at once come back in order.
	for i := range 200 {
		if err := c.WriteMessage(websocket.BinaryMessage, pattern(i*37, false)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		expectMessage(t, c, websocket.BinaryMessage, pattern(i*37, false))
	}
}

func TestEchoCoder(t *testing.T) {
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := cws.Dial(ctx, wsURL(g, "/echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(2 << 20)
	for _, n := range echoSizes {
		for _, typ := range []cws.MessageType{cws.MessageText, cws.MessageBinary} {
			p := pattern(n, typ == cws.MessageText)
			if err := c.Write(ctx, typ, p); err != nil {
				t.Fatal(err)
			}
			gt, got, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if gt != typ || !bytes.Equal(got, p) {
				t.Fatalf("size %d type %v: got type %v with %d bytes", n, typ, gt, len(got))
			}
		}
	}
	if err := c.Close(cws.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}

func TestRouteMaxMessage(t *testing.T) {
	g := startGateway(t, testConfig(Route{Path: "/small", Behaviour: Echo, MaxMessage: 1024}))
	c := dial(t, g, "/small", nil)
	ok := pattern(1024, false)
	if err := c.WriteMessage(websocket.BinaryMessage, ok); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, websocket.BinaryMessage, ok)
	if err := c.WriteMessage(websocket.BinaryMessage, pattern(1025, false)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, websocket.CloseMessageTooBig)
	eventually(t, "max_message rejection counted", func() bool {
		return metric(t, g, `upgate_rejections_total{reason="max_message"}`) == 1
	})
}

func TestPlainHTTP(t *testing.T) {
	g := startGateway(t, testConfig(
		Route{Path: "/echo", Behaviour: Echo, PlainHTTP: true},
		Route{Path: "/only", Behaviour: Echo},
	))
	status, _, body := do(t, "GET", publicURL(g, "/echo"), nil)
	if status != 200 || !strings.Contains(string(body), "/echo") {
		t.Fatalf("GET /echo: %d %q, want 200 with a description", status, body)
	}
	status, h, _ := do(t, "GET", publicURL(g, "/only"), nil)
	if status != 426 || !strings.EqualFold(h.Get("Upgrade"), "websocket") {
		t.Fatalf("GET /only: %d, Upgrade %q; want 426 with Upgrade: websocket", status, h.Get("Upgrade"))
	}
	if status, _, _ := do(t, "GET", publicURL(g, "/nope"), nil); status != 404 {
		t.Fatalf("GET /nope: %d, want 404", status)
	}
	dialStatus(t, g, "/nope", nil, 404)
	if status, _, body := do(t, "GET", publicURL(g, "/healthz"), nil); status != 200 || string(body) != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", status, body)
	}
	if status, _, body := do(t, "GET", publicURL(g, "/readyz"), nil); status != 200 || string(body) != "ready\n" {
		t.Fatalf("GET /readyz: %d %q", status, body)
	}
	// HEAD gets the head alone, with the length GET's body has: the next
	// response on the connection is not corrupted by a stray body.
	nc, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	both, _ := io.ReadAll(nc)
	if heads := strings.Split(string(both), "HTTP/1.1 200 OK\r\n"); len(heads) != 3 || heads[0] != "" ||
		!strings.HasSuffix(heads[1], "Content-Length: 3\r\n\r\n") || !strings.HasSuffix(heads[2], "Content-Length: 3\r\n\r\nok\n") {
		t.Fatalf("HEAD then GET on one connection: %q", both)
	}
	// A WebSocket route still upgrades.
	c := dial(t, g, "/only", nil)
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, websocket.TextMessage, []byte("hi"))
	if v := metric(t, g, `upgate_http_requests_total{route="/only",status="426"}`); v != 1 {
		t.Fatalf("426 counted %v times, want 1", v)
	}
}
