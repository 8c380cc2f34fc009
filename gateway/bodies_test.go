package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// exchange writes raw on a new connection to g's public listener and reads
// one response, read as the answer to method (HEAD has no content). It
// returns the status, header and body.
func exchange(t testing.TB, g *Gateway, method, raw string) (int, http.Header, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: reading the response: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: reading the body: %v", raw, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

const wsHeaders = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\n"

// TestErrorBodies checks the exact body of each refusal on a real
// listener: a plain sentence, never a Go package's prefix.
func TestErrorBodies(t *testing.T) {
	cfg := testConfig(
		Route{Path: "/echo", Behaviour: Echo},
		Route{Path: "/ws/{topic}", Behaviour: PubSub},
		Route{Path: "/site", Behaviour: Echo, Origins: []string{"https://example.com"}},
		Route{Path: "/chat", Behaviour: Echo, Subprotocols: []string{"chat"}, RequireSubprotocol: true},
	)
	cfg.Limits.MaxHeadBytes = 1024
	cfg.Limits.MaxHeaderFields = 10
	cfg.Timeouts.Handshake = 300 * time.Millisecond
	g := startGateway(t, cfg)
	cases := []struct {
		req    string
		status int
		body   string
	}{
		{"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, "No route for this path."},
		{"GET /nowhere HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 404, "No route for this path."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 426, "This resource is only reachable through a protocol upgrade."},
		{"GET /echo HTTP/1.1 x\r\nHost: x\r\n\r\n", 400, "Malformed request line."},
		{"GET /echo\r\n\r\n", 400, "Malformed request target."},
		{"GARBAGE\r\n\r\n", 400, "The request method is not a valid token."},
		{"G@T /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400, "The request method is not a valid token."},
		{"GET /echo HTTP/1.x\r\nHost: x\r\n\r\n", 400, "Malformed HTTP version."},
		{"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP version not supported; use HTTP/1.1."},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2 is not spoken on this port; use HTTP/1.1."},
		{"GET /echo HTTP/1.1\nHost: x\r\n\r\n", 400, "A line of the request ends in LF without CR."},
		{"GET /echo HTTP/1.1\r\nHost : x\r\n\r\n", 400, "Whitespace between a header field name and its colon."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400, "Obsolete line folding in a header field."},
		{"GET /echo HTTP/1.1\r\n\r\n", 400, "The request has no Host header."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "The request has more than one Host header."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "Malformed or conflicting Content-Length."},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "The request has both Content-Length and Transfer-Encoding."},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "Transfer-Encoding not supported."},
		{"GET /" + strings.Repeat("a", 1100) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Request line too long."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1100) + "\r\n\r\n", 431, "Request header fields too large."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 1\r\n", 12) + "\r\n", 431, "Too many header fields."},
		{"POST /echo HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 405, "A WebSocket handshake must use GET."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, "Missing or malformed Sec-WebSocket-Key."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "\r\n", 400, "Missing Sec-WebSocket-Version."},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 8\r\n\r\n", 426, "Unsupported Sec-WebSocket-Version; this server speaks version 13."},
		// RFC 9110 §7.8: the upgrade of an HTTP/1.0 request is ignored.
		{"GET /echo HTTP/1.0\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 426, "This resource is only reachable through a protocol upgrade."},
		{"GET /ws HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 400, "Missing or invalid topic."},
		{"GET /site HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 403, "Origin not allowed."},
		{"GET /chat HTTP/1.1\r\nHost: x\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 400, "No supported subprotocol offered."},
		{"GET /chat HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: a b\r\n" + wsHeaders + "Sec-WebSocket-Version: 13\r\n\r\n", 400, "Malformed Sec-WebSocket-Protocol."},
		// An incomplete head is answered once the handshake timeout passes.
		{"GET /echo HTTP/1.1\r\nHost: x\r\n", 408, "The request head did not arrive in time."},
	}
	for i, c := range cases {
		status, _, body := exchange(t, g, "GET", c.req)
		if status != c.status || body != c.body+"\n" {
			t.Errorf("#%d: %.60q: got %d %q; want %d %q", i, c.req, status, body, c.status, c.body+"\n")
		}
	}
}
