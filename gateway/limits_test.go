package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestMaxConnections(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxConnections = 3
	g := startGateway(t, cfg)
	conns := []*websocket.Conn{dial(t, g, "/echo", nil), dial(t, g, "/echo", nil), dial(t, g, "/ws/a", nil)}
	resp := dialStatus(t, g, "/echo", nil, 503)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
	// Health checks are still answered at capacity.
	if status, _, _ := do(t, "GET", publicURL(g, "/healthz"), nil); status != 200 {
		t.Fatalf("/healthz at capacity: %d", status)
	}
	_ = conns[0].Close()
	eventually(t, "a slot to free", func() bool { return g.Connections() == 2 })
	dial(t, g, "/echo", nil)
	if v := metric(t, g, `upgate_rejections_total{reason="max_connections"}`); v != 1 {
		t.Fatalf("max_connections rejections %v, want 1", v)
	}
	if v := metric(t, g, `upgate_handshakes_total{route="/echo",result="rejected",status="503"}`); v != 1 {
		t.Fatalf("503 handshakes %v, want 1", v)
	}
}

func TestConnectRate(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.ConnectRate = 0.5 // one token every two seconds
	cfg.Limits.ConnectBurst = 2
	g := startGateway(t, cfg)
	dial(t, g, "/echo", nil)
	dial(t, g, "/echo", nil)
	resp := dialStatus(t, g, "/echo", nil, 429)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2", resp.Header.Get("Retry-After"))
	}
	if v := metric(t, g, `upgate_rejections_total{reason="connect_rate"}`); v != 1 {
		t.Fatalf("connect_rate rejections %v, want 1", v)
	}
	// A refused handshake gives its connection slot back.
	if g.open.Load() != 2 {
		t.Fatalf("%d slots taken, want 2", g.open.Load())
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newTokenBucket(10, 3, now)
	for i := range 3 {
		if ok, _ := b.take(now); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	ok, wait := b.take(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("take over the burst: %v, wait %v; want refused, 100ms", ok, wait)
	}
	if ok, _ := b.take(now.Add(100 * time.Millisecond)); !ok {
		t.Fatal("token not refilled")
	}
	if ok, _ := b.take(now.Add(time.Hour)); !ok {
		t.Fatal("refill after a long pause")
	}
	if b.tokens > b.burst {
		t.Fatalf("tokens %v over the burst", b.tokens)
	}
}

func TestOrigins(t *testing.T) {
	g := startGateway(t, testConfig(Route{Path: "/app", Behaviour: Echo, Origins: []string{"https://good.example", "http://localhost:3000/"}}))
	dialStatus(t, g, "/app", http.Header{"Origin": {"https://evil.example"}}, 403)
	dialStatus(t, g, "/app", http.Header{"Origin": {"https://good.example.evil"}}, 403)
	dial(t, g, "/app", http.Header{"Origin": {"https://GOOD.example"}})
	dial(t, g, "/app", http.Header{"Origin": {"http://localhost:3000"}})
	dial(t, g, "/app", nil) // not a browser: no Origin
	if v := metric(t, g, `upgate_handshakes_total{route="/app",result="rejected",status="403"}`); v != 2 {
		t.Fatalf("403 handshakes %v, want 2", v)
	}
}

func TestSubprotocols(t *testing.T) {
	g := startGateway(t, testConfig(
		Route{Path: "/req", Behaviour: Echo, Subprotocols: []string{"v2.proto", "v1.proto"}, RequireSubprotocol: true},
		Route{Path: "/opt", Behaviour: Echo, Subprotocols: []string{"chat"}},
	))
	d := *dialer
	d.Subprotocols = []string{"x"}
	if _, resp, err := d.Dial(wsURL(g, "/req"), nil); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("no matching subprotocol: %v, want 400", err)
	}
	if _, resp, err := dialer.Dial(wsURL(g, "/req"), nil); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("no subprotocol offered: %v, want 400", err)
	}
	// The client's order wins, not the route's.
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"x", "v1.proto", "v2.proto"}, "v1.proto"},
		{[]string{"v2.proto", "v1.proto"}, "v2.proto"},
	} {
		d.Subprotocols = tc.offer
		c, _, err := d.Dial(wsURL(g, "/req"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subprotocol() != tc.want {
			t.Fatalf("offer %v: chose %q, want %q", tc.offer, c.Subprotocol(), tc.want)
		}
		_ = c.Close()
	}
	// Optional: no subprotocol is fine.
	c := dial(t, g, "/opt", nil)
	if c.Subprotocol() != "" {
		t.Fatalf("chose %q with none offered", c.Subprotocol())
	}
	d.Subprotocols = []string{"bad token"}
	if _, resp, err := d.Dial(wsURL(g, "/opt"), nil); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("malformed Sec-WebSocket-Protocol: %v, want 400", err)
	}
}

// addrHandler records the client address of each connection.
type addrHandler struct {
	nopHandler
	addrs chan netip.Addr
}

func (h *addrHandler) OnOpen(c Conn, r *Request) { h.addrs <- r.ClientAddr }

type nopHandler struct{}

func (nopHandler) OnOpen(Conn, *Request)           {}
func (nopHandler) OnMessage(Conn, OpCode, []byte)  {}
func (nopHandler) OnClose(Conn, StatusCode, error) {}
func (nopHandler) String() string                  { return "nop" }
func (h *addrHandler) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case a := <-h.addrs:
		if a.String() != want {
			t.Fatalf("client address %v, want %s", a, want)
		}
	case <-time.After(testTimeout):
		t.Fatal("no OnOpen")
	}
}

func TestForwardedFor(t *testing.T) {
	route := Route{Path: "/c", Behaviour: Custom}
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }

	// Untrusted peer: the header is ignored.
	h := &addrHandler{addrs: make(chan netip.Addr, 8)}
	g := startGateway(t, testConfig(route), WithHandler(h))
	dial(t, g, "/c", xff("203.0.113.9"))
	h.expect(t, "127.0.0.1")

	// Trusted peer: the right-most untrusted hop.
	cfg := testConfig(route)
	cfg.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"}
	h = &addrHandler{addrs: make(chan netip.Addr, 8)}
	g = startGateway(t, cfg, WithHandler(h))
	dial(t, g, "/c", xff("198.51.100.7, 203.0.113.9, 10.1.2.3"))
	h.expect(t, "203.0.113.9")
	dial(t, g, "/c", xff("198.51.100.7", "203.0.113.9:4711, 10.1.2.3"))
	h.expect(t, "203.0.113.9")
	dial(t, g, "/c", xff("10.9.9.9, 10.1.2.3"))
	h.expect(t, "10.9.9.9")
	dial(t, g, "/c", xff("forged, 10.1.2.3"))
	h.expect(t, "10.1.2.3")
	dial(t, g, "/c", xff("[2001:db8::1]"))
	h.expect(t, "2001:db8::1")
	dial(t, g, "/c", nil)
	h.expect(t, "127.0.0.1")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		key string
		cfg func(*Config)
	}{
		{"routes[0].behaviour", func(c *Config) { c.Routes = []Route{{Path: "/c", Behaviour: Custom}} }},
		{"reuse_port", func(c *Config) { c.ReusePort = true }},
		{"routes[0].path", func(c *Config) { c.Routes = []Route{{Path: "/healthz"}} }},
		{"routes[0].subprotocols[0]", func(c *Config) { c.Routes = []Route{{Path: "/a", Subprotocols: []string{"a b"}}} }},
		{"timeouts.drain_delay", func(c *Config) { c.Timeouts.DrainDelay = -time.Second }},
		{"routes[0].publish", func(c *Config) { c.Routes = []Route{{Path: "/e", Behaviour: Echo, Publish: true}} }},
		{"deflate.level", func(c *Config) { c.Deflate.Level = 10 }},
		{"deflate.level", func(c *Config) { c.Deflate.Level = -1 }},
		{"deflate.threshold", func(c *Config) { c.Deflate.Threshold = -1 }},
		{"routes[0].deflate_level", func(c *Config) { c.Routes = []Route{{Path: "/e", DeflateLevel: 12}} }},
		{"routes[0].deflate_threshold", func(c *Config) { c.Routes = []Route{{Path: "/e", DeflateThreshold: -5}} }},
		{"routes[0].deflate_level", func(c *Config) { c.Routes = []Route{{Path: "/e", NoDeflate: true, DeflateLevel: 5}} }},
		{"routes[0].deflate_threshold", func(c *Config) { c.Routes = []Route{{Path: "/e", NoDeflate: true, DeflateThreshold: 5}} }},
	}
	for _, tc := range cases {
		cfg := testConfig()
		tc.cfg(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%s: got %v, want a ConfigError on %s", tc.key, err, tc.key)
		}
	}
	// Both listeners on port 0 is fine; the same fixed address is not.
	if _, err := New(testConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Listen, cfg.Admin = "127.0.0.1:8080", "127.0.0.1:8080"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("same address: %v", err)
	}
	cfg = Config{Limits: Limits{ConnectRate: 2.5}}
	cfg.Normalize()
	if cfg.Limits.ConnectBurst != 3 {
		t.Fatalf("burst %d, want 3", cfg.Limits.ConnectBurst)
	}
}

func TestSlowConsumer(t *testing.T) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub})
	cfg.Limits.MaxOutbound = 64 << 10
	g := startGateway(t, cfg)
	dialRaw(t, g, "/ws/slow") // subscribes, never reads
	fast := dial(t, g, "/ws/fast", nil)
	eventually(t, "subscriptions", func() bool { return g.Subscribers("slow") == 1 && g.Subscribers("fast") == 1 })
	payload := make([]byte, 256<<10)
	for i := 0; i < 400 && g.Subscribers("slow") == 1 && metric(t, g, "upgate_slow_consumers_total") == 0; i++ {
		g.Publish("slow", OpBinary, payload)
	}
	eventually(t, "the slow consumer to be counted", func() bool { return metric(t, g, "upgate_slow_consumers_total") == 1 })
	eventually(t, "the slow consumer to be closed", func() bool { return g.Subscribers("slow") == 0 })
	if v := metric(t, g, `upgate_closes_total{route="/ws/{topic}",code="1008"}`); v != 1 {
		t.Fatalf("1008 closes %v, want 1", v)
	}
	// Other connections are unaffected.
	if n, _ := g.Publish("fast", OpText, []byte("still here")); n != 1 {
		t.Fatalf("Publish(fast) delivered %d", n)
	}
	expectMessage(t, fast, websocket.TextMessage, []byte("still here"))
}

func TestHeadLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxHeadBytes = 1024
	cfg.Limits.MaxHeaderFields = 10
	g := startGateway(t, cfg)
	try := func(extra string) string {
		c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n")); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if got := try("X-Big: " + strings.Repeat("a", 1100) + "\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Fatalf("head over 1 KiB: %q, want 431", got)
	}
	if got := try(strings.Repeat("X-A: 1\r\n", 12)); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Fatalf("12 fields: %q, want 431", got)
	}
	if got := try("X-A: 1\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("small head: %q, want 200", got)
	}
}

// TestFDLimit gives the public listener a reserve that leaves room for a
// few dozen connections: the gateway warns at start that max_connections
// is more than that, answers the connection past it 503 at once, and
// counts it as a rejection for fd_limit.
func TestFDLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	cfg := testConfig()
	cfg.Limits.FDReserve = int(rl.Cur) - len(fds) - 40
	var logs logLines
	g := startGateway(t, cfg, WithLogger(newTextLogger(&logs)))
	f := g.srv.FDLimit()
	if f.Limit == 0 || f.MaxConns < 2 || f.MaxConns > 40 {
		t.Skipf("descriptor guard gives %+v", f)
	}
	for _, want := range []string{"limits.max_connections is more than the file descriptor limit allows",
		"max_connections=100000", "fd_limit=" + strconv.Itoa(f.Limit), "connections_possible=" + strconv.Itoa(f.MaxConns)} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("start log lacks %q:\n%s", want, logs.String())
		}
	}
	for range f.MaxConns {
		dial(t, g, "/echo", nil)
	}
	resp := dialStatus(t, g, "/echo", nil, 503)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
	if v := metric(t, g, `upgate_rejections_total{reason="fd_limit"}`); v != 1 {
		t.Fatalf("fd_limit rejections %v, want 1", v)
	}
}
