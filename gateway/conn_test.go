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
		c := new(connState)
		c.rt.Store(&route{Route: Route{Subprotocols: tc.list}})
		if tc.chose != "" {
			c.setSubprotocol([]byte(tc.chose))
		}
		if got := c.subprotocol(); got != tc.chose {
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

// TestConnExtraLazy: a connection without a connExtra has none to
// answer from, attaches from several goroutines at once agree on one
// connExtra, and a later connection of the state replaces the connExtra of
// an earlier one that a late attach left behind.
func TestConnExtraLazy(t *testing.T) {
	c := new(connState)
	if c.extraOf(1) != nil || c.busConn() != nil || c.handle().Data() != nil || c.handle().Request() != nil {
		t.Fatal("a state without a connExtra: got one; want none")
	}
	var wg sync.WaitGroup
	got := make([]*connExtra, 8)
	for i := range got {
		wg.Go(func() {
			x := c.attach(1)
			x.data.Store(&dataBox{i})
			got[i] = x
		})
	}
	wg.Wait()
	x := c.x.Load()
	for i, g := range got {
		if g != x {
			t.Fatalf("#%d: attach gave another connExtra than the one attached", i)
		}
	}
	if c.extraOf(2) != nil {
		t.Fatal("connection 2 sees connection 1's connExtra")
	}
	y := c.attach(2)
	if y == x || c.extraOf(1) != nil || c.extraOf(2) != y || y.data.Load() != nil {
		t.Fatal("connection 2 did not get a connExtra of its own in place of connection 1's")
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
		var c Conn
		g.conns.each(func(x Conn) bool {
			if x.Route() == "/e" && (c.IsZero() || x.ID() > c.ID()) {
				c = x
			}
			return true
		})
		if got := c.ClientAddr().String(); got != tc.want {
			t.Errorf("#%d: echo: got %s; want %s", i, got, tc.want)
		}
		if got := c.s.x.Load() != nil; got != tc.extra {
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

func (h *connAddrHandler) OnOpen(c Conn, r *Request) {
	h.addrs <- [2]netip.Addr{c.ClientAddr(), r.ClientAddr}
}

// TestConnSize: every connection has a connState; it stays in the 80-byte
// size class on 64-bit platforms, pubsub connections included. A
// subscriber of a topic an authorisation joined (connExtra.joined) takes
// a 48-byte object; the handle is three words.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	for i, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"connState", unsafe.Sizeof(connState{}), 80},
		{"subscriber", unsafe.Sizeof(subscriber{}), 48},
		{"Conn", unsafe.Sizeof(Conn{}), 24},
	} {
		if c.got > c.want {
			t.Errorf("#%d: %s: got %d bytes; want at most %d", i, c.name, c.got, c.want)
		}
	}
}
