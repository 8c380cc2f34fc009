package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
)

// expectRejected dials url and checks the handshake is answered status,
// with a Retry-After header when retryAfter is set.
func expectRejected(t *testing.T, url string, header http.Header, status int, retryAfter bool) {
	t.Helper()
	c, resp, err := gorillaDial(t, url, header)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s: accepted, want %d", url, status)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, want an HTTP answer %d", url, err, status)
	}
	if resp.StatusCode != status {
		t.Errorf("dial %s: status %d, want %d", url, resp.StatusCode, status)
	}
	if ra := resp.Header.Get("Retry-After"); retryAfter && ra == "" {
		t.Errorf("dial %s: %d without Retry-After", url, resp.StatusCode)
	}
}

// expectCounted checks that /metrics shows at least one of name with labels;
// counters may be updated just after the client saw the answer, so it
// waits up to 5s.
func expectCounted(t *testing.T, p *upgateProc, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sum(p.metrics(t), name, labels...) < 1 {
		if time.Now().After(deadline) {
			t.Errorf("/metrics does not count %s%v", name, labels)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLimits drives each limit through the binary and checks the status or
// close code the client sees, and that /metrics counts the rejection.
func TestLimits(t *testing.T) {
	t.Run("max connections: 503 with Retry-After", func(t *testing.T) {
		t.Parallel()
		p := startUpgate(t, nil, "--max-connections", "2")
		first := mustGorilla(t, p.wsURL("/echo"))
		mustGorilla(t, p.wsURL("/ws/a"))
		expectRejected(t, p.wsURL("/echo"), nil, http.StatusServiceUnavailable, true)
		// Health checks are still answered when full.
		if status, _, _ := httpDo(t, "GET", "http://"+p.addr+"/healthz", ""); status != http.StatusOK {
			t.Errorf("/healthz with the gateway full: %d", status)
		}
		expectCounted(t, p, "upgate_rejections_total", `reason="max_connections"`)
		// Once a connection closes, its slot is free again.
		first.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, ""), time.Now().Add(time.Second))
		closeCode(t, first, 5*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, _, err := gorillaDial(t, p.wsURL("/echo"), nil)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no slot free 5s after a close: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("connect rate: 429 with Retry-After", func(t *testing.T) {
		t.Parallel()
		p := startUpgate(t, nil, "--connect-rate", "0.5", "--connect-burst", "2")
		mustGorilla(t, p.wsURL("/echo"))
		mustGorilla(t, p.wsURL("/echo"))
		expectRejected(t, p.wsURL("/echo"), nil, http.StatusTooManyRequests, true)
		expectCounted(t, p, "upgate_rejections_total", `reason="connect_rate"`)
	})

	t.Run("max message: close 1009", func(t *testing.T) {
		t.Parallel()
		p := startUpgate(t, nil, "--max-message", "1024")
		c := mustGorilla(t, p.wsURL("/echo"))
		c.WriteMessage(gws.BinaryMessage, payload(1024, 0))
		if _, got := readGorilla(t, c); len(got) != 1024 {
			t.Fatalf("echo of 1024 bytes: %d bytes", len(got))
		}
		c.WriteMessage(gws.BinaryMessage, payload(1025, 0))
		if code := closeCode(t, c, 5*time.Second); code != gws.CloseMessageTooBig {
			t.Errorf("close code %d after 1025 bytes, want 1009", code)
		}
		// Fragments count together: a 256-byte write buffer sends 1500 bytes
		// as several frames.
		d := gws.Dialer{HandshakeTimeout: 5 * time.Second, WriteBufferSize: 256}
		c, _, err := d.Dial(p.wsURL("/echo"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.WriteMessage(gws.TextMessage, payload(1500, 0))
		if code := closeCode(t, c, 5*time.Second); code != gws.CloseMessageTooBig {
			t.Errorf("close code %d after 1500 bytes in fragments, want 1009", code)
		}
		expectCounted(t, p, "upgate_closes_total", `code="1009"`)
	})

	t.Run("origin: 403, per-route max message", func(t *testing.T) {
		t.Parallel()
		file := writeFile(t, "upgate.yaml", `routes:
  - path: /echo
    origins: ["https://good.example"]
  - path: /small
    max_message: 64
`)
		p := startUpgate(t, nil, "--config", file)
		expectRejected(t, p.wsURL("/echo"), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, false)
		c, _, err := gorillaDial(t, p.wsURL("/echo"), http.Header{"Origin": {"https://good.example"}})
		if err != nil {
			t.Fatalf("listed origin: %v", err)
		}
		c.Close()
		expectCounted(t, p, "upgate_rejections_total", `reason="origin"`)
		s := mustGorilla(t, p.wsURL("/small"))
		s.WriteMessage(gws.TextMessage, payload(64, 0))
		readGorilla(t, s)
		s.WriteMessage(gws.TextMessage, payload(65, 0))
		if code := closeCode(t, s, 5*time.Second); code != gws.CloseMessageTooBig {
			t.Errorf("close code %d over the route's max_message, want 1009", code)
		}
	})

	t.Run("request head too large: 431", func(t *testing.T) {
		t.Parallel()
		p := startUpgate(t, nil, "--max-head-bytes", "1024")
		status := rawRequest(t, p.addr, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"X-Padding: "+strings.Repeat("p", 2000)+"\r\n\r\n")
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", status)
		}
		expectCounted(t, p, "upgate_http_errors_total", `status="431"`)
		// Under the limit, the same handshake succeeds.
		status = rawRequest(t, p.addr, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"X-Padding: "+strings.Repeat("p", 500)+"\r\n\r\n")
		if status != http.StatusSwitchingProtocols {
			t.Errorf("status %d under the limit, want 101", status)
		}
	})
}

// rawRequest writes a request head over TCP and returns the response status.
func rawRequest(t *testing.T, addr, head string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read status line: %v", err)
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	return status
}
