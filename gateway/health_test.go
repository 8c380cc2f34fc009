package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHealthMethods checks the answer to each method on the health paths
// of the public listener (raw requests) and of the admin listener.
func TestHealthMethods(t *testing.T) {
	g := startGateway(t, testConfig(Route{Path: "/echo", Behaviour: Echo}))
	cases := []struct {
		method string
		status int
		allow  string
		body   map[string]string // by path; "" for no content
	}{
		{"GET", 200, "", map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"}},
		{"HEAD", 200, "", map[string]string{"/healthz": "", "/readyz": ""}},
		{"POST", 405, "GET, HEAD", nil},
		{"PUT", 405, "GET, HEAD", nil},
		{"DELETE", 405, "GET, HEAD", nil},
		{"PATCH", 405, "GET, HEAD", nil},
		{"OPTIONS", 405, "GET, HEAD", nil},
		{"TRACE", 405, "GET, HEAD", nil},
		{"FOO", 501, "", nil},
		{"get", 501, "", nil}, // methods are case-sensitive (RFC 9110 §9.1)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		for i, c := range cases {
			want := c.body[path]
			switch c.status {
			case 405:
				want = "This path answers GET and HEAD only.\n"
			case 501:
				want = "Unknown request method.\n"
			}
			status, h, body := exchange(t, g, c.method, c.method+" "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if status != c.status || h.Get("Allow") != c.allow || body != want {
				t.Errorf("#%d: public %s %s: got %d Allow %q %q; want %d Allow %q %q",
					i, c.method, path, status, h.Get("Allow"), body, c.status, c.allow, want)
			}
			if c.method == "HEAD" && h.Get("Content-Length") != "3" && h.Get("Content-Length") != "6" {
				t.Errorf("#%d: public HEAD %s: got Content-Length %q; want GET's", i, path, h.Get("Content-Length"))
			}

			req, err := http.NewRequest(c.method, adminURL(g, path), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("#%d: admin %s %s: %v", i, c.method, path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
				t.Errorf("#%d: admin %s %s: got %d Allow %q; want %d Allow %q",
					i, c.method, path, resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
			}
		}
	}
	if v := metric(t, g, `upgate_http_requests_total{route="/healthz",status="405"}`); v != 6 {
		t.Errorf("got %v 405s counted on /healthz; want 6", v)
	}
	if v := metric(t, g, `upgate_http_requests_total{route="/readyz",status="501"}`); v != 2 {
		t.Errorf("got %v 501s counted on /readyz; want 2", v)
	}
}

// TestUnsupportedUpgrade: an upgrade to a protocol the gateway does not
// speak is ignored on a route that speaks plain HTTP (RFC 9110 §7.8), and
// answered 426 on a WebSocket-only route. Raw sockets, so that no client
// library interprets the exchange.
func TestUnsupportedUpgrade(t *testing.T) {
	g := startGateway(t, testConfig(
		Route{Path: "/echo", Behaviour: Echo, PlainHTTP: true},
		Route{Path: "/only", Behaviour: Echo},
	))
	plainBody := "upgate: /echo is a WebSocket endpoint (echo).\n"
	upgrades := []string{
		"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
		"Upgrade: foo/1, IRC/6.9\r\nConnection: upgrade\r\n",
		"Upgrade: HTTP/2.0\r\nConnection: Upgrade\r\n",
	}
	for i, up := range upgrades {
		req := "GET /echo HTTP/1.1\r\nHost: x\r\n" + up + "\r\n"
		status, h, body := exchange(t, g, "GET", req)
		if status != 200 || body != plainBody || h.Get("Upgrade") != "" {
			t.Errorf("#%d: plain_http route: got %d Upgrade %q %q; want 200 without Upgrade %q", i, status, h.Get("Upgrade"), body, plainBody)
		}
		req = "GET /only HTTP/1.1\r\nHost: x\r\n" + up + "\r\n"
		status, h, body = exchange(t, g, "GET", req)
		if status != 426 || h.Get("Upgrade") != "websocket" || body != "This resource is only reachable through a protocol upgrade.\n" {
			t.Errorf("#%d: WebSocket-only route: got %d Upgrade %q %q; want 426 with Upgrade: websocket", i, status, h.Get("Upgrade"), body)
		}
	}
	// The connection stays HTTP/1.1 after the ignored upgrade: the next
	// request on it is answered too.
	c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n"+upgrades[0]+"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, want := range []string{plainBody, "ok\n"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("#%d: same connection: got %d %q; want 200 %q", i, resp.StatusCode, body, want)
		}
	}
}
