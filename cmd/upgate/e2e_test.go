package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	gws "github.com/gorilla/websocket"
	"github.com/upgate/upgate/internal/testutil"
)

// payload returns n bytes of a repeating printable pattern, valid UTF-8.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + (byte(i)+seed)%26
	}
	return b
}

// gorillaDial opens a WebSocket with gorilla/websocket.
func gorillaDial(t testing.TB, url string, header http.Header) (*gws.Conn, *http.Response, error) {
	t.Helper()
	d := gws.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func mustGorilla(t testing.TB, url string) *gws.Conn {
	t.Helper()
	c, resp, err := gorillaDial(t, url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

// readGorilla reads one message within 5s.
func readGorilla(t testing.TB, c *gws.Conn) (int, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, data
}

// closeCode reads until the connection ends and returns the close code the
// server sent (1006 when it sent none). Then, as applications do, it closes
// the socket: the server lingers until the client's FIN.
func closeCode(t testing.TB, c *gws.Conn, within time.Duration) int {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no close within %v", within)
		}
		return gws.CloseAbnormalClosure
	}
}

func TestStartupLinesAndHealth(t *testing.T) {
	// The default log format (text) announces the listeners in lines a
	// person can read and a program can parse.
	p := startUpgate(t, nil, "--log-format", "text")
	var public, admin map[string]string
	lines, _ := p.stderr.snapshot()
	for _, l := range lines {
		if strings.HasPrefix(l, "{") {
			t.Errorf("JSON line with --log-format text: %s", l)
		}
		switch rec := logRecord(l); rec["msg"] {
		case "public listener":
			public = rec
		case "admin listener":
			admin = rec
		}
	}
	for _, want := range []string{"ws://" + p.addr + "/echo", "ws://" + p.addr + "/ws/{topic}"} {
		if !strings.Contains(public["websocket"], want) {
			t.Errorf("public listener line %v does not show %s", public, want)
		}
	}
	if admin["metrics"] != "http://"+p.admin+"/metrics" {
		t.Errorf("admin listener line %v does not show the metrics URL", admin)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, body := httpDo(t, "GET", "http://"+p.addr+path, ""); status != http.StatusOK {
			t.Errorf("GET %s: %d %q", path, status, body)
		}
	}
	// /echo answers plain HTTP (plain_http), the pubsub route wants an upgrade.
	if status, _, _ := httpDo(t, "GET", "http://"+p.addr+"/echo", ""); status != http.StatusOK {
		t.Errorf("GET /echo: %d, want 200", status)
	}
	if status, _, _ := httpDo(t, "GET", "http://"+p.addr+"/ws/news", ""); status != http.StatusUpgradeRequired {
		t.Errorf("GET /ws/news: %d, want 426", status)
	}
}

func TestEchoGorilla(t *testing.T) {
	p := startUpgate(t, nil)
	c := mustGorilla(t, p.wsURL("/echo"))
	for i, n := range []int{0, 1, 125, 126, 65535, 65536, 200_000} {
		for _, typ := range []int{gws.TextMessage, gws.BinaryMessage} {
			msg := payload(n, byte(i))
			if err := c.WriteMessage(typ, msg); err != nil {
				t.Fatalf("write %d bytes: %v", n, err)
			}
			gotTyp, got := readGorilla(t, c)
			if gotTyp != typ || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes (type %d): got %d bytes of type %d", n, typ, len(got), gotTyp)
			}
		}
	}
	// A close handshake initiated by the client ends with its own code.
	c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	if code := closeCode(t, c, 5*time.Second); code != gws.CloseNormalClosure {
		t.Errorf("close code %d, want 1000", code)
	}
}

// pmdAnswer is the gateway's answer to an acceptable permessage-deflate
// offer that sets no window.
const pmdAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// TestEchoCoder: coder/websocket negotiates permessage-deflate in both of
// its compression modes; the gateway answers no context takeover either
// way, which a client that asked for context takeover must accept
// (RFC 7692 §7.1.1), and messages of every size round-trip.
func TestEchoCoder(t *testing.T) {
	p := startUpgate(t, nil)
	for _, mode := range []cws.CompressionMode{cws.CompressionNoContextTakeover, cws.CompressionContextTakeover} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, resp, err := cws.Dial(ctx, p.wsURL("/echo"), &cws.DialOptions{CompressionMode: mode, CompressionThreshold: 1})
		if err != nil {
			cancel()
			t.Fatalf("mode %v: dial: %v", mode, err)
		}
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != pmdAnswer {
			t.Errorf("mode %v: got extensions %q; want %q", mode, ext, pmdAnswer)
		}
		coderEcho(ctx, t, c, []int{0, 125, 126, 128, 65536, 300_000, 1 << 20})
		c.CloseNow()
		cancel()
	}
}

// TestDeflateRoutes: gorilla negotiates on the default routes and
// round-trips every size; a route with no_deflate declines the offer.
func TestDeflateRoutes(t *testing.T) {
	p := startUpgate(t, nil, "--route", "/echo=echo", "--route", "/raw=echo,no_deflate", "--max-message", "2097152")
	d := gws.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	for _, rc := range []struct{ path, want string }{{"/echo", pmdAnswer}, {"/raw", ""}} {
		c, resp, err := d.Dial(p.wsURL(rc.path), nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", rc.path, err)
		}
		t.Cleanup(func() { c.Close() })
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != rc.want {
			t.Errorf("%s: got extensions %q; want %q", rc.path, got, rc.want)
		}
		for i, n := range []int{0, 1, 127, 128, 4096, 65536, 1 << 20} {
			for _, typ := range []int{gws.TextMessage, gws.BinaryMessage} {
				msg := payload(n, byte(i))
				if err := c.WriteMessage(typ, msg); err != nil {
					t.Fatalf("%s: write %d bytes: %v", rc.path, n, err)
				}
				gotTyp, got := readGorilla(t, c)
				if gotTyp != typ || !bytes.Equal(got, msg) {
					t.Fatalf("#%d: %s: echo of %d bytes (type %d): got %d bytes of type %d", i, rc.path, n, typ, len(got), gotTyp)
				}
			}
		}
	}
	if v := p.metrics(t)[`upgate_deflate_connections_total{route="/echo"}`]; v != 1 {
		t.Errorf("got upgate_deflate_connections_total{route=\"/echo\"} %v; want 1", v)
	}
}

// coderEcho has c send a text and a binary message of each size, checks
// each echo, and runs the close handshake with 1000 (an error unless the
// server answers it with a close frame).
func coderEcho(ctx context.Context, t *testing.T, c *cws.Conn, sizes []int) {
	t.Helper()
	c.SetReadLimit(1 << 20)
	for i, n := range sizes {
		for _, typ := range []cws.MessageType{cws.MessageText, cws.MessageBinary} {
			msg := payload(n, byte(i))
			if err := c.Write(ctx, typ, msg); err != nil {
				t.Fatalf("write %d bytes: %v", n, err)
			}
			gotTyp, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read echo of %d bytes: %v", n, err)
			}
			if gotTyp != typ || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes (%v): got %d bytes (%v)", n, typ, len(got), gotTyp)
			}
		}
	}
	if err := c.Close(cws.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestPubSubAndAdminPublish(t *testing.T) {
	p := startUpgate(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Subscribers of "news" through both libraries, one of "sport".
	var gorillas []*gws.Conn
	for i := 0; i < 3; i++ {
		gorillas = append(gorillas, mustGorilla(t, p.wsURL("/ws/news")))
	}
	var coders []*cws.Conn
	for i := 0; i < 3; i++ {
		c, _, err := cws.Dial(ctx, p.wsURL("/ws/news"), nil)
		if err != nil {
			t.Fatalf("coder dial: %v", err)
		}
		defer c.CloseNow()
		coders = append(coders, c)
	}
	sport := mustGorilla(t, p.wsURL("/ws/sport"))

	expectAll := func(want string) {
		t.Helper()
		for i, c := range gorillas {
			if _, got := readGorilla(t, c); string(got) != want {
				t.Errorf("gorilla subscriber %d got %q, want %q", i, got, want)
			}
		}
		for i, c := range coders {
			_, got, err := c.Read(ctx)
			if err != nil || string(got) != want {
				t.Errorf("coder subscriber %d got %q, %v; want %q", i, got, err, want)
			}
		}
	}

	// A client publishes to its own topic (the route has publish on).
	if err := gorillas[0].WriteMessage(gws.TextMessage, []byte("from a client")); err != nil {
		t.Fatal(err)
	}
	expectAll("from a client")

	// The admin API publishes to every subscriber of the topic.
	status, _, body := httpDo(t, "POST", "http://"+p.admin+"/publish/news", "from the admin API")
	if status/100 != 2 {
		t.Fatalf("POST /publish/news: %d %s", status, body)
	}
	expectAll("from the admin API")

	// Nothing of it reached the other topic: its first message is its own.
	status, _, body = httpDo(t, "POST", "http://"+p.admin+"/publish/sport", "goal")
	if status/100 != 2 {
		t.Fatalf("POST /publish/sport: %d %s", status, body)
	}
	if _, got := readGorilla(t, sport); string(got) != "goal" {
		t.Errorf("sport subscriber got %q first, want \"goal\"", got)
	}
}

func TestMetricsMove(t *testing.T) {
	p := startUpgate(t, nil)
	before := p.metrics(t)
	c := mustGorilla(t, p.wsURL("/echo"))
	for i := 0; i < 5; i++ {
		c.WriteMessage(gws.TextMessage, []byte("tick"))
		readGorilla(t, c)
	}
	after := p.metrics(t)
	for _, m := range []struct {
		name  string
		delta float64
	}{
		{"upgate_websocket_connections_open", 1},
		{"upgate_messages_received_total", 5},
		{"upgate_messages_sent_total", 5},
		{"upgate_handshakes_total", 1},
	} {
		if d := sum(after, m.name) - sum(before, m.name); d != m.delta {
			t.Errorf("%s moved by %v, want %v", m.name, d, m.delta)
		}
	}
}

func TestNodeWSClient(t *testing.T) {
	node, script := nodeClient(t)
	p := startUpgate(t, nil)
	for i, args := range [][]string{
		{"echo", p.wsURL("/echo"), "2", "0", "1", "125", "126", "65535", "65536", "300000"},
		{"frag", p.wsURL("/echo")},
		{"--deflate", "echo", p.wsURL("/echo"), "1", "0", "1", "127", "128", "1023", "1024", "65536", "1m"},
		{"--deflate", "frag", p.wsURL("/echo")},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := nodeCommand(ctx, node, script, args...).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), `"ok":true`) {
			t.Errorf("%d: node ws-client.mjs %s: %v\n%s", i, strings.Join(args, " "), err, out)
		}
		// ws reports the names of the extensions it agreed to.
		want := `"extensions":""`
		if args[0] == "--deflate" {
			want = `"extensions":"permessage-deflate"`
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%d: node ws-client.mjs %s: output without %s:\n%s", i, strings.Join(args, " "), want, out)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	out, errOut, code := runUpgate(t, nil, "--help")
	if code != 0 {
		t.Errorf("--help: exit %d, stderr %q", code, errOut)
	}
	for i, o := range options {
		for _, want := range []string{"--" + o.flag, o.env(), "file: " + o.key} {
			if !strings.Contains(out, want) {
				t.Errorf("%d: --help does not mention %s", i, want)
			}
		}
	}
	for _, want := range []string{"--config", "UPGATE_CONFIG", "--route", "upgate version"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := runUpgate(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "upgate "+testVersion+" ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want \"upgate %s ...\"", args, code, out, errOut, testVersion)
		}
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	badKey := writeFile(t, "bad-value.yaml", "limits:\n  max_connections: lots\n")
	unknownKey := writeFile(t, "unknown.yaml", "limits:\n  max_conections: 10\n")
	badRoute := writeFile(t, "route.yaml", "routes:\n  - path: /echo\n  - path: ws/{topic}\n    behaviour: pubsub\n")
	cases := []struct {
		env  []string
		args []string
		want string // on standard error
	}{
		{nil, []string{"--max-connections", "many"}, `--max-connections: want a whole number, got "many"`},
		{nil, []string{"--drain-timeout", "10"}, "--drain-timeout: want a duration"},
		{nil, []string{"--no-such-flag"}, "--no-such-flag"},
		{nil, []string{"--listen", "nowhere"}, `--listen: want host:port or off, got "nowhere"`},
		{nil, []string{"--listen", "off"}, "--listen: off needs tls.listen"},
		{nil, []string{"--tls-listen", ":8443", "--tls-cert", "a.pem", "--tls-cert", "b.pem", "--tls-key", "a.key"}, "--tls-key: 1 keys for 2 certificates"},
		{[]string{"UPGATE_TLS_LISTEN=:8443", "UPGATE_TLS_CERT=a.pem,b.pem", "UPGATE_TLS_KEY=a.key"}, nil, "UPGATE_TLS_KEY: 1 keys for 2 certificates"},
		{nil, []string{"--tls-listen", ":8443", "--tls-cert", "/nonexistent/a.pem", "--tls-key", "a.key"}, "--tls-cert (tls.certs[0]): /nonexistent/a.pem: no such file"},
		{nil, []string{"--tls-cert", "a.pem"}, "--tls-cert: certificates are given but tls.listen is empty"},
		{[]string{"UPGATE_IDLE_TIMEOUT=soon"}, nil, "UPGATE_IDLE_TIMEOUT: want a duration"},
		{[]string{"UPGATE_MAX_MESSAGE=-5"}, nil, "UPGATE_MAX_MESSAGE: want 0 to 2 GiB"},
		{nil, []string{"--config", badKey}, badKey + ":2: limits.max_connections: want a whole number"},
		{[]string{"UPGATE_CONFIG=" + unknownKey}, nil, unknownKey + ":2: limits.max_conections: unknown key; did you mean max_connections?"},
		{nil, []string{"--config", badRoute}, badRoute + ":3: routes[1].path: must start with /"},
		{nil, []string{"--route", "echo=echo"}, "--route (routes[0].path): must start with /"},
		{nil, []string{"--config", "/nonexistent/upgate.yaml"}, "/nonexistent/upgate.yaml: cannot read the configuration file"},
		{nil, []string{"serve"}, `unexpected argument "serve"`},
	}
	for i, c := range cases {
		args := append([]string{"--listen", "127.0.0.1:0", "--admin", "off"}, c.args...)
		out, errOut, code := runUpgate(t, c.env, args...)
		if code != exitConfig {
			t.Errorf("%d: %v %q: exit %d, want 2\nstdout %s\nstderr %s", i, c.env, c.args, code, out, errOut)
			continue
		}
		if !strings.Contains(errOut, c.want) || !strings.HasPrefix(errOut, "upgate: configuration: ") {
			t.Errorf("%d: %v %q: stderr\n%s\nwant \"upgate: configuration: ...%s\"", i, c.env, c.args, errOut, c.want)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%d: %v %q: want one line on stderr, got\n%s", i, c.env, c.args, errOut)
		}
	}
}

func TestRuntimeFailureExit1(t *testing.T) {
	// The public port is taken: that is no configuration error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, errOut, code := runUpgate(t, nil, "--listen", l.Addr().String(), "--admin", "off", "--log-format", "json")
	if code != exitRuntime {
		t.Errorf("listening on a taken port: exit %d, want 1\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "cannot start") {
		t.Errorf("stderr does not say it cannot start:\n%s", errOut)
	}
}

func TestSecondSignalForcesExit(t *testing.T) {
	p := startUpgate(t, nil, "--drain-timeout", "20s", "--close-timeout", "20s")
	// A client that never answers the close frame keeps the drain waiting.
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 12)
	if _, err := conn.Read(buf); err != nil || string(buf) != "HTTP/1.1 101" {
		t.Fatalf("handshake: %q, %v", buf, err)
	}

	p.signal(syscall.SIGTERM)
	waitLog(t, p, "draining: closing every connection with 1001", 5*time.Second)
	if code := p.wait(300 * time.Millisecond); code >= 0 {
		t.Fatalf("exited (%d) during the drain, before the second signal", code)
	}
	start := time.Now()
	p.signal(syscall.SIGINT)
	if code := p.wait(5 * time.Second); code != exitRuntime {
		t.Errorf("after a second signal: exit %d, want 1", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exit took %v after the second signal", d)
	}
}

// waitLog waits until a log line's msg is msg.
func waitLog(t testing.TB, p *upgateProc, msg string, within time.Duration) map[string]string {
	t.Helper()
	deadline := time.After(within)
	for {
		lines, changed := p.stderr.snapshot()
		for _, l := range lines {
			if rec := logRecord(l); rec["msg"] == msg {
				return rec
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line %q within %v:\n%s", msg, within, p.stderr)
		}
	}
}

// dialMany opens n gorilla connections to url, 32 at a time; it stops at
// the first failure.
func dialMany(t testing.TB, url string, n int) []*gws.Conn {
	t.Helper()
	conns := make([]*gws.Conn, n)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	sem := make(chan struct{}, 32)
	for i := range conns {
		if failed() {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := gws.Dialer{HandshakeTimeout: 10 * time.Second}
			c, resp, err := d.Dial(url, nil)
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %v", i, err)
				}
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if firstErr != nil {
		t.Fatalf("dial %s: %v", url, firstErr)
	}
	return conns
}

func TestPrecedenceAndRouteFlag(t *testing.T) {
	// The file allows 5 connections, the environment 1, a flag 2: the flag
	// wins. --route replaces the file's routes.
	file := writeFile(t, "upgate.yaml", "limits:\n  max_connections: 5\nroutes:\n  - path: /file\n")
	p := startUpgate(t, []string{"UPGATE_MAX_CONNECTIONS=1", "UPGATE_CONFIG=" + file},
		"--max-connections", "2", "--route", "/chat/{topic}=pubsub,publish")
	a := mustGorilla(t, p.wsURL("/chat/room"))
	b := mustGorilla(t, p.wsURL("/chat/room"))
	expectRejected(t, p.wsURL("/chat/room"), nil, http.StatusServiceUnavailable, true)
	expectRejected(t, p.wsURL("/file"), nil, http.StatusNotFound, false)
	if err := a.WriteMessage(gws.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*gws.Conn{a, b} {
		if _, got := readGorilla(t, c); string(got) != "hi" {
			t.Errorf("subscriber %d got %q", i, got)
		}
	}
}

// TestTunnelRoute runs a tcp route of the binary against an echo upstream:
// the 101, the bytes behind the head, both directions and the client's FIN.
func TestTunnelRoute(t *testing.T) {
	up := testutil.EchoTCP(t, nil)
	p := startUpgate(t, nil, "--route", "/up=tcp,upstream="+up, "--route", "/echo=echo")
	lines, _ := p.stderr.snapshot()
	if !strings.Contains(strings.Join(lines, "\n"), "/up->"+up) {
		t.Errorf("the public listener line does not name the tunnel:\n%s", strings.Join(lines, "\n"))
	}
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, "GET /up HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello ")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("got %v, %v; want 101 with Upgrade: tcp", resp, err)
	}
	io.WriteString(nc, "world")
	nc.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(br); string(got) != "hello world" {
		t.Errorf("through the tunnel: got %q, %v; want hello world, then EOF", got, err)
	}
}

// TestNodeWebsockify streams bytes through a websockify route of the binary
// to an echo upstream with node's ws client, which reassembles them from
// however many binary messages come back.
func TestNodeWebsockify(t *testing.T) {
	node, script := nodeClient(t)
	up := testutil.EchoTCP(t, nil)
	p := startUpgate(t, nil, "--route", "/vnc=websockify,upstream="+up)
	for i, size := range []string{"1", "16384", "1m"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := nodeCommand(ctx, node, script, "stream", p.wsURL("/vnc"), size).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), `"ok":true`) || !strings.Contains(string(out), `"closeCode":1000`) {
			t.Errorf("%d: node ws-client.mjs stream %s: %v\n%s", i, size, err, out)
		}
	}
}
