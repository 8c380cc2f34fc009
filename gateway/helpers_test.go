package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = 10 * time.Second

// testConfig listens on ephemeral loopback ports with two event loops, no
// idle or ping timers and short close and drain budgets.
func testConfig(routes ...Route) Config {
	return Config{
		Listen: "127.0.0.1:0",
		Admin:  "127.0.0.1:0",
		Loops:  2,
		Routes: routes,
		Timeouts: Timeouts{
			Idle:  -1,
			Ping:  -1,
			Close: time.Second,
			Drain: 5 * time.Second,
		},
	}
}

// quietLogger drops everything; logLines collects records for tests that
// look at them.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// shutdownNow shuts g down within the test timeout.
func shutdownNow(g *Gateway) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return g.Shutdown(ctx)
}

// startGateway starts a gateway for the test and shuts it down at cleanup.
func startGateway(t testing.TB, cfg Config, opts ...Option) *Gateway {
	t.Helper()
	g, err := New(cfg, append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return g
}

func wsURL(g *Gateway, path string) string { return "ws://" + g.Addr().String() + path }

func adminURL(g *Gateway, path string) string { return "http://" + g.AdminAddr().String() + path }

func publicURL(g *Gateway, path string) string { return "http://" + g.Addr().String() + path }

var dialer = &websocket.Dialer{HandshakeTimeout: testTimeout}

// dial opens a WebSocket with gorilla and fails the test unless it gets 101.
func dial(t testing.TB, g *Gateway, path string, h http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := dialer.Dial(wsURL(g, path), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialStatus dials and expects the handshake to be refused with status; it
// returns the response.
func dialStatus(t testing.TB, g *Gateway, path string, h http.Header, status int) *http.Response {
	t.Helper()
	c, resp, err := dialer.Dial(wsURL(g, path), h)
	if err == nil {
		_ = c.Close()
		t.Fatalf("dial %s: got 101, want %d", path, status)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, want status %d", path, err, status)
	}
	if resp.StatusCode != status {
		t.Fatalf("dial %s: status %d, want %d", path, resp.StatusCode, status)
	}
	return resp
}

// expectMessage reads one message and compares it.
func expectMessage(t testing.TB, c *websocket.Conn, typ int, want []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	gt, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gt != typ || !bytes.Equal(got, want) {
		t.Fatalf("got type %d with %d bytes %.40q, want type %d with %d bytes %.40q", gt, len(got), got, typ, len(want), want)
	}
}

// expectClose reads until the connection closes, checks the close code and
// closes the socket.
func expectClose(t testing.TB, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read: %v, want close %d", err, code)
		}
		if ce.Code != code {
			t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		_ = c.Close() // gorilla answered the close frame; end TCP as a client does
		return
	}
}

var httpClient = &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

// do runs an HTTP request and returns its status, headers and body.
func do(t testing.TB, method, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// doJSON runs a request, checks the status and decodes a JSON answer.
func doJSON(t testing.TB, method, url string, body []byte, status int) map[string]any {
	t.Helper()
	got, _, b := do(t, method, url, body)
	if got != status {
		t.Fatalf("%s %s: status %d (%s), want %d", method, url, got, b, status)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v in %q", method, url, err, b)
	}
	return m
}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pattern returns n deterministic bytes, ASCII when text.
func pattern(n int, text bool) []byte {
	b := make([]byte, n)
	for i := range b {
		if text {
			b[i] = 'a' + byte(i%26)
		} else {
			b[i] = byte(i*31 + 7)
		}
	}
	return b
}

// rawClient is a WebSocket client on a bare socket for the allocation tests
// and benchmarks: it writes pre-encoded frames and reads into fixed buffers,
// so that it allocates nothing per message itself.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	hdr [10]byte
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

func dialRaw(t testing.TB, g *Gateway, path string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{c: c, br: bufio.NewReaderSize(c, 64<<10)}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	line, err := rc.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101 ") {
		t.Fatalf("handshake on %s: %q, %v", path, line, err)
	}
	for line != "\r\n" {
		if line, err = rc.br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return rc
}

// maskedFrame encodes a client frame.
func maskedFrame(op byte, payload []byte) []byte {
	out := []byte{0x80 | op}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	mask := [4]byte{0x11, 0x22, 0x33, 0x44}
	out = append(out, mask[:]...)
	for i, b := range payload {
		out = append(out, b^mask[i&3])
	}
	return out
}

// readFrame reads one server frame of at most len(buf) payload bytes into
// buf and returns its opcode and length.
func (rc *rawClient) readFrame(buf []byte) (byte, int, error) {
	h := &rc.hdr
	if _, err := io.ReadFull(rc.br, h[:2]); err != nil {
		return 0, 0, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(rc.br, h[2:4]); err != nil {
			return 0, 0, err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(rc.br, h[2:10]); err != nil {
			return 0, 0, err
		}
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	if n > len(buf) {
		return 0, 0, fmt.Errorf("frame of %d bytes over the %d-byte buffer", n, len(buf))
	}
	_, err := io.ReadFull(rc.br, buf[:n])
	return h[0] & 0x0f, n, err
}

// subscriberFleet opens n raw subscribers of path that count the frames
// they read.
func subscriberFleet(t testing.TB, g *Gateway, path string, n int) (*atomic.Int64, []*rawClient) {
	var got atomic.Int64
	subs := make([]*rawClient, n)
	for i := range subs {
		rc := dialRaw(t, g, path)
		subs[i] = rc
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, _, err := rc.readFrame(buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	return &got, subs
}

// waitFor polls until v reaches want, without allocating: it yields first,
// then sleeps briefly so as not to take a core from the readers.
func waitFor(t testing.TB, v *atomic.Int64, want int64) {
	deadline := time.Now().Add(testTimeout)
	for i := 0; v.Load() < want; i++ {
		if i < 10 {
			runtime.Gosched()
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d, want %d", v.Load(), want)
		}
		time.Sleep(20 * time.Microsecond)
	}
}
