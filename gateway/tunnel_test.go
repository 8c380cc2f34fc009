//go:build linux

package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/parser"
)

// echoUpstream is a TCP server that echoes what it reads; after the
// client's FIN it writes "bye <n>\n" (n: the bytes it read) and closes,
// so a test can see half-close go through both ways.
func echoUpstream(t *testing.T) string {
	return testutil.EchoTCP(t, func(n int64) string { return "bye " + strconv.FormatInt(n, 10) + "\n" })
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fullAddr returns the address of a listener whose accept queue is full:
// a connect to it waits for an answer that does not come (the kernel
// drops the SYN), as an upstream slow to accept does.
func fullAddr(t *testing.T) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	// Fill the queue: these complete their handshake and are never
	// accepted; the next SYN is dropped.
	for i := 0; i < 4; i++ {
		nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { nc.Close() })
	}
	return addr
}

func startTunnels(t *testing.T, routes ...Route) *Gateway {
	cfg := testConfig(routes...)
	return startGateway(t, cfg)
}

func TestTunnelTCP(t *testing.T) {
	up := echoUpstream(t)
	g := startTunnels(t, Route{Path: "/db", Behaviour: TCP, Upstream: up})

	nc, br, resp := rawUpgrade(t, g, "/db", "tcp", "first ")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("got %d %q; want 101 tcp", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	io.WriteString(nc, "second")
	got := make([]byte, len("first second"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "first second" {
		t.Fatalf("through the tunnel: got %q, %v", got, err)
	}
	testutil.Eventually(t, "the tunnel is listed", func() bool { return g.Connections() == 1 })
	// Half-close: the client's FIN reaches the upstream, whose answer
	// still comes back.
	nc.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye 12\n" {
		t.Errorf("after the client's FIN: got %q, %v; want the upstream's last words", rest, err)
	}
	testutil.Eventually(t, "the tunnel ends", func() bool { return g.Connections() == 0 && g.open.Load() == 0 })
	rt := g.routes.all[0]
	if up, down := rt.tunnels.bytesUp.Load(), rt.tunnels.bytesDown.Load(); up != 12 || down != 19 {
		t.Errorf("bytes: got up %d down %d; want 12, 19", up, down)
	}
}

// TestTunnelLarge sends 32 MiB each way through a tunnel whose client
// reads slowly at first: the data arrive intact and the tunnel's buffers
// stay bounded.
func TestTunnelLarge(t *testing.T) {
	up := echoUpstream(t)
	cfg := testConfig(Route{Path: "/db", Behaviour: TCP, Upstream: up})
	cfg.Tunnels.Buffer = 64 << 10
	g := startGateway(t, cfg)
	nc, br, resp := rawUpgrade(t, g, "/db", "tcp", "")
	if resp.StatusCode != 101 {
		t.Fatalf("got %d; want 101", resp.StatusCode)
	}
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	const size = 32 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	go func() {
		nc.Write(data)
		nc.(*net.TCPConn).CloseWrite()
	}()
	// Read nothing until the tunnel is full both ways, then check it holds
	// no more than its buffers.
	var tn interface{ Buffered() int64 }
	testutil.Eventually(t, "the tunnel is spliced", func() bool {
		g.conns.each(func(c Conn) bool {
			if t := c.tunnelOf(); t != nil {
				tn = t
			}
			return false
		})
		return tn != nil
	})
	// The client reads nothing yet: the writer fills every buffer on the
	// way, the tunnel's included, and then stops.
	testutil.Eventually(t, "the tunnel fills", func() bool { return tn.Buffered() >= 64<<10 })
	if b := tn.Buffered(); b > 2*64<<10 {
		t.Errorf("held %d bytes while the client did not read; want at most two buffers of 64 KiB", b)
	}
	h := sha256.New()
	n, err := io.CopyN(h, br, size)
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), sha256New(data)) {
		t.Fatalf("got %d bytes, %v; want %d intact", n, err, size)
	}
	tail, _ := io.ReadAll(br)
	if string(tail) != "bye "+strconv.Itoa(size)+"\n" {
		t.Errorf("tail: got %q", tail)
	}
}

func sha256New(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestTunnelUpstreamErrors(t *testing.T) {
	g := startTunnels(t,
		Route{Path: "/down", Behaviour: TCP, Upstream: deadAddr(t)},
		Route{Path: "/slow", Behaviour: TCP, Upstream: fullAddr(t), ConnectTimeout: 300 * time.Millisecond},
		Route{Path: "/vnc", Behaviour: Websockify, Upstream: deadAddr(t)},
		Route{Path: "/one", Behaviour: TCP, Upstream: echoUpstream(t), MaxTunnels: 1},
	)
	tests := []struct {
		path, upgrade string
		status        int
	}{
		{"/down", "tcp", 502},
		{"/slow", "tcp", 504},
		{"/down", "websocket", 426},
		{"/down", "", 426},
	}
	for i, tt := range tests {
		_, _, resp := rawUpgrade(t, g, tt.path, tt.upgrade, "")
		if resp.StatusCode != tt.status {
			t.Errorf("#%d %s: got %d; want %d", i, tt.path, resp.StatusCode, tt.status)
		}
		if want := strconv.Itoa(tt.status) + " " + parser.StatusText(tt.status); resp.Status != want {
			t.Errorf("#%d %s: got status line %q; want %q", i, tt.path, resp.Status, want)
		}
		if tt.status == 426 && resp.Header.Get("Upgrade") != "tcp" {
			t.Errorf("#%d: got Upgrade %q; want tcp", i, resp.Header.Get("Upgrade"))
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(g, "/vnc"), nil); err == nil || resp == nil || resp.StatusCode != 502 {
		t.Errorf("websockify to a dead upstream: got %v, %v; want 502", resp, err)
	}
	// MaxTunnels: the second tunnel waits for the first to end.
	nc, _, resp := rawUpgrade(t, g, "/one", "tcp", "")
	if resp.StatusCode != 101 {
		t.Fatalf("first tunnel: got %d", resp.StatusCode)
	}
	if _, _, resp := rawUpgrade(t, g, "/one", "tcp", ""); resp.StatusCode != 503 {
		t.Errorf("second tunnel: got %d; want 503", resp.StatusCode)
	}
	nc.Close()
	testutil.Eventually(t, "the slots are released", func() bool { return g.open.Load() == 0 })
	if rt := g.routes.all[0]; rt.tunnels.refused.Load() != 1 {
		t.Errorf("refused connects: got %d; want 1", rt.tunnels.refused.Load())
	}
}

// TestTunnelNATS runs the NATS text protocol through a tcp tunnel to a
// real NATS server.
func TestTunnelNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(testutil.Timeout) {
		t.Fatal("NATS server not ready")
	}
	g := startTunnels(t, Route{Path: "/nats", Behaviour: TCP, Upstream: ns.Addr().String()})
	nc, br, resp := rawUpgrade(t, g, "/nats", "tcp", "")
	if resp.StatusCode != 101 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("got %q; want the server's INFO", line)
	}
	io.WriteString(nc, "CONNECT {\"verbose\":false}\r\nSUB greet 1\r\nPUB greet 5\r\nhello\r\nPING\r\n")
	want := []string{"MSG greet 1 5\r\n", "hello\r\n", "PONG\r\n"}
	for i, w := range want {
		if line, err := br.ReadString('\n'); line != w {
			t.Errorf("#%d: got %q, %v; want %q", i, line, err, w)
		}
	}
}

func TestTunnelWebsockify(t *testing.T) {
	up := echoUpstream(t)
	g := startTunnels(t, Route{Path: "/vnc", Behaviour: Websockify, Upstream: up})
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: testutil.Timeout}
	ws, resp, err := d.Dial(wsURL(g, "/vnc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if resp.Header.Get("Sec-WebSocket-Protocol") != "binary" {
		t.Errorf("got subprotocol %q; want binary", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	msg := bytes.Repeat([]byte("vnc!"), 50_000)
	if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	var got []byte
	_ = ws.SetReadDeadline(time.Now().Add(testutil.Timeout))
	for len(got) < len(msg) {
		typ, p, err := ws.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage {
			t.Fatalf("after %d bytes: got type %d, %v", len(got), typ, err)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("echo through websockify differs")
	}
	// A text message is not part of the stream: 1003.
	ws.WriteMessage(websocket.TextMessage, []byte("text"))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
	}
	if !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Errorf("after a text message: got %v; want close 1003", err)
	}
}

// TestTunnelAdminClose closes a tunnel through the gateway's API.
func TestTunnelAdminClose(t *testing.T) {
	g := startTunnels(t, Route{Path: "/db", Behaviour: TCP, Upstream: echoUpstream(t)})
	_, br, resp := rawUpgrade(t, g, "/db", "tcp", "")
	if resp.StatusCode != 101 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	var id uint64
	testutil.Eventually(t, "the tunnel is listed", func() bool {
		g.conns.each(func(c Conn) bool { id = c.ID(); return false })
		return id != 0 && g.conns.get(id).tunnelOf() != nil
	})
	list := doJSON(t, "GET", adminURL(g, "/connections"), nil, 200)
	conns, _ := list["connections"].([]any)
	if len(conns) != 1 {
		t.Fatalf("GET /connections: got %v; want the tunnel", list)
	}
	info := conns[0].(map[string]any)
	if info["protocol"] != "tcp" || info["route"] != "/db" || info["bytes_up"] == nil {
		t.Errorf("GET /connections: got %v; want the tcp tunnel on /db with its bytes", info)
	}
	if code, _, _ := do(t, "DELETE", adminURL(g, "/connections/"+strconv.FormatUint(id, 10)), nil); code/100 != 2 {
		t.Fatalf("DELETE /connections/%d: got %d", id, code)
	}
	if _, err := bufio.NewReader(br).ReadByte(); err == nil {
		t.Errorf("the tunnel is still open after Disconnect")
	}
	testutil.Eventually(t, "the tunnel ends", func() bool { return g.Connections() == 0 })
}

// TestTunnelMetrics checks the tunnel families after one tunnel and one
// refused connect.
func TestTunnelMetrics(t *testing.T) {
	g := startTunnels(t,
		Route{Path: "/db", Behaviour: TCP, Upstream: echoUpstream(t)},
		Route{Path: "/down", Behaviour: TCP, Upstream: deadAddr(t)},
	)
	nc, br, _ := rawUpgrade(t, g, "/db", "tcp", "abc")
	got := make([]byte, 3)
	io.ReadFull(br, got)
	nc.Close()
	rawUpgrade(t, g, "/down", "tcp", "")
	testutil.Eventually(t, "the tunnel ends", func() bool { return g.Connections() == 0 })
	fams := scrapeFamilies(t, g)
	for i, d := range metricDefs {
		if d.tunnel && fams[d.name] == nil {
			t.Errorf("#%d: %s not exposed", i, d.name)
		}
	}
	tests := []struct {
		series string
		want   float64
	}{
		{`upgate_tunnels_total{route="/db"}`, 1},
		{`upgate_tunnels_open{route="/db"}`, 0},
		{`upgate_tunnel_bytes_total{route="/db",direction="up"}`, 3},
		{`upgate_tunnel_connect_failures_total{route="/down",reason="refused"}`, 1},
		{`upgate_tunnel_connect_failures_total{route="/down",reason="timeout"}`, 0},
		{`upgate_handshakes_total{route="/down",result="rejected",status="502"}`, 1},
		{`upgate_http_errors_total{status="502"}`, 1},
	}
	for i, tt := range tests {
		if got := metric(t, g, tt.series); got != tt.want {
			t.Errorf("#%d %s: got %v; want %v", i, tt.series, got, tt.want)
		}
	}
}

// TestTunnelTLSListener checks the answer of a tunnel route on the TLS
// listener (501: the loop holds the TLS session, which the reactor
// cannot take over), and that a registered stream protocol, which stays
// on the loop, works over TLS.
func TestTunnelTLSListener(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.Routes = []Route{
		{Path: "/db", Behaviour: TCP, Upstream: echoUpstream(t)},
		{Path: "/s", Behaviour: Stream, Protocols: []string{"foo"}},
	}
	u := newUpperProto()
	g := startGateway(t, cfg, WithProtocol(Protocol{Name: "foo", Handler: u}))
	for i, tt := range []struct {
		path, upgrade string
		status        int
	}{{"/db", "tcp", 501}, {"/s", "foo/9", 101}} {
		nc, err := tls.Dial("tcp", g.TLSAddr().String(), f.clientConfig("a.test"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(testutil.Timeout))
		io.WriteString(nc, "GET "+tt.path+" HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: "+tt.upgrade+"\r\n\r\nsecret")
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != tt.status {
			t.Errorf("#%d %s: got %v, %v; want %d", i, tt.path, resp, err, tt.status)
			continue
		}
		if tt.status != 101 {
			continue
		}
		line, _ := br.ReadString('\n')
		got := make([]byte, 6)
		io.ReadFull(br, got)
		if line != "hi foo/9\n" || string(got) != "SECRET" {
			t.Errorf("#%d: over TLS got %q %q; want the greeting and SECRET", i, line, got)
		}
	}
}

// TestTunnelMaxConnections checks that a tunnel takes a connection slot
// from its connect to its end, as a WebSocket connection does.
func TestTunnelMaxConnections(t *testing.T) {
	cfg := testConfig(Route{Path: "/db", Behaviour: TCP, Upstream: echoUpstream(t)}, Route{Path: "/echo", Behaviour: Echo})
	cfg.Limits.MaxConnections = 1
	g := startGateway(t, cfg)
	nc, _, resp := rawUpgrade(t, g, "/db", "tcp", "")
	if resp.StatusCode != 101 {
		t.Fatalf("first tunnel: got %d; want 101", resp.StatusCode)
	}
	if _, _, resp := rawUpgrade(t, g, "/db", "tcp", ""); resp.StatusCode != 503 {
		t.Errorf("a second tunnel beyond max_connections: got %d; want 503", resp.StatusCode)
	}
	dialStatus(t, g, "/echo", nil, 503)
	nc.Close()
	testutil.Eventually(t, "the slot is released", func() bool { return g.open.Load() == 0 })
	dial(t, g, "/echo", nil).Close()
}
