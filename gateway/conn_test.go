package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/upgate/upgate/loop"
)

// TestConnSubprotocol: Conn keeps the chosen subprotocol as its index in
// the route's list, up to the longest list a route may have.
func TestConnSubprotocol(t *testing.T) {
	many := make([]string, maxSubprotocols)
	for i := range many {
		many[i] = fmt.Sprintf("p%d", i)
	}
	for i, tc := range []struct {
		list  []string
		chose string // "" for none
	}{
		{[]string{"a", "b", "c"}, ""},
		{[]string{"a", "b", "c"}, "a"},
		{[]string{"a", "b", "c"}, "c"},
		{[]string{"a", "b", "a"}, "a"},
		{many, "p0"},
		{many, fmt.Sprintf("p%d", maxSubprotocols-1)},
	} {
		c := &Conn{lc: &loop.Conn{}, rt: &route{Route: Route{Subprotocols: tc.list}}}
		if tc.chose != "" {
			c.setSubprotocol([]byte(tc.chose))
		}
		if got := c.Subprotocol(); got != tc.chose {
			t.Errorf("#%d: got %q; want %q", i, got, tc.chose)
		}
		if c.x.Load() != nil {
			t.Errorf("#%d: got a connExtra; want none", i)
		}
	}
	cfg := testConfig(Route{Path: "/p", Behaviour: Echo, Subprotocols: append(many, "one-too-many")})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "subprotocols") {
		t.Fatalf("a route with %d subprotocols: got %v; want an error naming subprotocols", maxSubprotocols+1, err)
	}
}

// TestConnExtraLazy: a connection without a connExtra answers its
// accessors with zero values, and SetData from several goroutines at once
// attaches one connExtra that every goroutine then sees.
func TestConnExtraLazy(t *testing.T) {
	c := &Conn{lc: &loop.Conn{}, rt: &route{}}
	if c.Request() != nil || c.User() != "" || c.Data() != nil || c.ClientAddr().IsValid() || c.busConn() != nil {
		t.Fatal("accessors of a Conn without a connExtra: got values; want zero")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c.SetData(i)
			_ = c.Data()
			_, _ = c.User(), c.Request()
		})
	}
	wg.Wait()
	x := c.x.Load()
	if x == nil {
		t.Fatal("SetData attached no connExtra")
	}
	c.SetData("last")
	if got := c.Data(); got != "last" || c.x.Load() != x {
		t.Fatalf("got %v and another connExtra %v; want %q in the same one", got, c.x.Load() != x, "last")
	}
}

// TestConnClientAddr: Conn.ClientAddr is the peer's unless X-Forwarded-For
// named another, on every kind of route, and Request.ClientAddr agrees.
func TestConnClientAddr(t *testing.T) {
	h := &connAddrHandler{addrs: make(chan [2]netip.Addr, 8)}
	cfg := testConfig(Route{Path: "/c", Behaviour: Custom}, Route{Path: "/e", Behaviour: Echo})
	cfg.TrustedProxies = []string{"127.0.0.1"}
	g := startGateway(t, cfg, WithHandler(h))
	xff := func(v string) http.Header {
		if v == "" {
			return nil
		}
		return http.Header{"X-Forwarded-For": {v}}
	}
	for i, tc := range []struct {
		xff, want string
		extra     bool // Conn keeps the address in a connExtra
	}{
		{"", "127.0.0.1", false},
		{"127.0.0.1", "127.0.0.1", false},
		{"203.0.113.9", "203.0.113.9", true},
		{"[2001:db8::1]", "2001:db8::1", true},
	} {
		dial(t, g, "/c", xff(tc.xff))
		var got [2]netip.Addr
		select {
		case got = <-h.addrs:
		case <-time.After(testTimeout):
			t.Fatal("no OnOpen")
		}
		if got[0].String() != tc.want || got[1] != got[0] {
			t.Errorf("#%d: custom: got Conn %v, Request %v; want %s", i, got[0], got[1], tc.want)
		}

		before := g.Connections()
		dial(t, g, "/e", xff(tc.xff))
		eventually(t, "echo connection", func() bool { return g.Connections() == before+1 })
		var c *Conn
		g.conns.each(func(x *Conn) bool {
			if x.rt.Path == "/e" && (c == nil || x.ID() > c.ID()) {
				c = x
			}
			return true
		})
		if got := c.ClientAddr().String(); got != tc.want {
			t.Errorf("#%d: echo: got %s; want %s", i, got, tc.want)
		}
		if got := c.x.Load() != nil; got != tc.extra {
			t.Errorf("#%d: echo: got a connExtra %v; want %v", i, got, tc.extra)
		}
	}
}

// connAddrHandler records Conn.ClientAddr and Request.ClientAddr of each
// connection.
type connAddrHandler struct {
	nopHandler
	addrs chan [2]netip.Addr
}

func (h *connAddrHandler) OnOpen(c *Conn, r *Request) {
	h.addrs <- [2]netip.Addr{c.ClientAddr(), r.ClientAddr}
}

// TestConnSize: every connection has a Conn; it stays in the 80-byte size
// class on 64-bit platforms, pubsub connections included.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	for i, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"Conn", unsafe.Sizeof(Conn{}), 80},
		{"subscriber", unsafe.Sizeof(subscriber{}), 32},
	} {
		if c.got > c.want {
			t.Errorf("#%d: %s: got %d bytes; want at most %d", i, c.name, c.got, c.want)
		}
	}
}
