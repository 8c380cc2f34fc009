package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/internal/wstest"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = testutil.Timeout

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

// Shared helpers, under the short names the tests of this package use.
var (
	eventually  = testutil.Eventually
	pattern     = wstest.Pattern
	maskedFrame = wstest.Message // a whole masked client message
)

const testKey = wstest.Key

// dialRaw opens a WebSocket on path with a bare-socket client, for the
// allocation tests and benchmarks: it writes pre-encoded frames and reads
// with ReadFrameInto, so that it allocates nothing per message itself. The
// socket has no deadline after the handshake.
func dialRaw(t testing.TB, g *Gateway, path string) *wstest.Client {
	t.Helper()
	rc := wstest.DialWS(t, g.Addr().String(), path)
	_ = rc.Conn.SetDeadline(time.Time{})
	return rc
}

// subscriberFleet opens n raw subscribers of path that count the frames
// they read.
func subscriberFleet(t testing.TB, g *Gateway, path string, n int) (*atomic.Int64, []*wstest.Client) {
	var got atomic.Int64
	subs := make([]*wstest.Client, n)
	for i := range subs {
		subs[i] = dialRaw(t, g, path)
		go countFrames(subs[i], &got)
	}
	return &got, subs
}

// countFrames reads frames from rc until it fails, adding one to got for
// each.
func countFrames(rc *wstest.Client, got *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		if _, _, err := rc.ReadFrameInto(buf); err != nil {
			return
		}
		got.Add(1)
	}
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
