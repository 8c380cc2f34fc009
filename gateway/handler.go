package gateway

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/parser"
)

// Errors of the connection API.
var (
	// ErrClosed is returned by Conn methods (and Gateway.Send and
	// Gateway.Disconnect) once the connection's close handshake began.
	ErrClosed = loop.ErrClosed
	// ErrSlowConsumer is returned by a send that found the connection's
	// outbound queue over Limits.MaxOutbound: the connection is being
	// closed with 1008.
	ErrSlowConsumer = loop.ErrSlowConsumer
	// ErrControlTooLong is returned by Ping, or a Send of OpPing or
	// OpPong, with a payload over 125 bytes (RFC 6455 §5.5).
	ErrControlTooLong = loop.ErrControlTooLong
	// ErrUnknownConn is returned for a connection id that is not open.
	ErrUnknownConn = errors.New("gateway: unknown connection id")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("gateway: already started")
	// ErrStopped is returned by Start after Shutdown.
	ErrStopped = errors.New("gateway: stopped")
)

// Handler receives the connections of a route whose Behaviour is Custom: the
// route's own (Route.Handler), else the default given by WithHandler. One
// Handler may serve several routes (Conn.Route tells which). Every method
// runs on the event loop goroutine that owns the connection, never
// concurrently for one connection, and must return quickly without
// blocking: a slow callback stalls every connection of its loop. Work that
// may block belongs on another goroutine, which can then use the
// goroutine-safe Conn methods. Callbacks must not panic.
type Handler interface {
	// OnOpen is called once the 101 Switching Protocols response is
	// written. r is a copy of the request that lives as long as the caller
	// keeps it (the same value as c.Request()). Messages sent from OnOpen
	// follow the 101.
	OnOpen(c Conn, r *Request)

	// OnMessage delivers one complete text or binary message (op is OpText
	// or OpBinary; text is valid UTF-8). payload points into the event
	// loop's read buffer and is valid only until OnMessage returns: copy it
	// to keep it. A c.Write from inside OnMessage writes on the loop with
	// no allocation and no copy beyond the write path's own.
	OnMessage(c Conn, op OpCode, payload []byte)

	// OnClose is called once when the connection has ended. code is the
	// close code of the handshake (the peer's when the peer started it,
	// 1005 when its close frame had none, the server's when the server
	// did, 1006 when TCP ended without a close frame); err is nil for a
	// completed close handshake, else why the connection ended (a protocol
	// error, ErrSlowConsumer, a timeout, the shutdown, ...). After OnClose
	// every method of c that sends returns ErrClosed.
	OnClose(c Conn, code StatusCode, err error)
}

// Authorizer may be implemented by a Handler to accept or refuse a
// WebSocket handshake of its Custom routes before the 101 is written, after
// the route's origin, subprotocol and limit checks passed. Authorize runs on
// the event loop goroutine and must not block. A nil error accepts; a
// *RejectError answers its status, any other error 403.
type Authorizer interface {
	Authorize(r *Request) error
}

// RejectError is an Authorizer's refusal: Status (4xx or 5xx) and Reason,
// the body of the plain-text answer.
type RejectError struct {
	Status int
	Reason string
}

func (e *RejectError) Error() string { return "gateway: handshake rejected: " + e.Reason }

// Request is a copy of a WebSocket handshake request, made for Custom
// routes. It owns its memory: it stays valid after the callbacks return.
// It is not modified by the gateway after OnOpen; treat it as read-only.
type Request struct {
	Route       string      // the configured path of the route
	Path        string      // the request path as sent (still percent-encoded)
	RawQuery    string      // the query without '?', still encoded
	Topic       string      // the decoded {topic} segment of a pattern route, else ""
	Header      http.Header // every header field, names canonicalized
	Subprotocol string      // the chosen subprotocol, "" for none
	Protocol    string      // a stream's Upgrade token ("foo/2"), "" for WebSocket
	RemoteAddr  net.Addr    // the TCP peer (with Config.ProxyProtocol, the load balancer)
	// ClientAddr is the client's address. The immediate peer is the TCP
	// peer, or, with Config.ProxyProtocol, the source address the load
	// balancer's PROXY protocol header named; when that peer is in
	// Config.TrustedProxies, ClientAddr is the right-most X-Forwarded-For
	// hop that is not a trusted proxy, else the peer itself.
	ClientAddr netip.Addr
	// TLS describes the connection's TLS session, as net/http's
	// Request.TLS does: nil on the plain listener. With
	// TLS.ClientCA set, PeerCertificates holds the client's verified
	// chain, leaf first.
	TLS *tls.ConnectionState
}

// Query parses RawQuery. It allocates on every call.
func (r *Request) Query() url.Values {
	v, _ := url.ParseQuery(r.RawQuery)
	return v
}

// copyRequest copies what a handler may need from the loop's views.
func copyRequest(h *parser.Request) *Request {
	r := &Request{
		Path:     string(h.Path()),
		RawQuery: string(h.Query()),
		Header:   make(http.Header, h.NumFields()),
	}
	for i := 0; i < h.NumFields(); i++ {
		name, value := h.Field(i)
		key := http.CanonicalHeaderKey(string(name))
		r.Header[key] = append(r.Header[key], string(value))
	}
	return r
}

// behaviour kinds, resolved once per route for the per-message switch.
const (
	kindEcho uint8 = iota
	kindPubSub
	kindCustom
	kindBridge
	kindStream // a connection switched to a registered Protocol
	kindTunnel // a tcp or websockify tunnel
)

// Conn is the gateway's handle of one connection: a small value (24 bytes
// on 64-bit platforms) the Handler receives and may keep, copy, compare and
// use as a map key. Its methods are safe to call from any goroutine, except
// Write and WriteData, which belong to the connection's event loop.
//
// A Conn outlives its connection safely: once the close handshake began,
// Send, Write, Ping and Close return ErrClosed, and once the connection
// has ended its accessors answer with what they answered last or with zero
// values. The gateway reuses the state of ended connections for the next
// ones (so that a handshake allocates nothing), and a Conn never acts on,
// or reports, a later connection: it carries its connection's id and checks
// it (loop.Conn.Current). The zero Conn is no connection.
type Conn struct {
	lc loop.Conn
	s  *connState
}

// connState is the gateway's state of one connection. Every connection has
// one, so it keeps only what every connection needs (80 bytes on 64-bit
// platforms, a size class of its own): what only some connections need is
// in a connExtra, attached to those alone.
//
// It is kept with the loop's state of the connection (loop.Options.
// KeepContext) and reused with it: a later connection of that loop state
// resets it in OnRequest (stateFor). So every field a Conn handle reads
// from another goroutine is an atomic (rt, x, meta), and a handle checks
// loop.Conn.Current after reading it. A state that another goroutine may
// still use through something else than a handle is marked stKeep and
// never reused: only a tunnel's, which the tunnel reactor's callback uses
// after the loop has let go of the connection. A topic's subscriber lists
// do not count (each is its loop's own, and OnClose takes the connection
// out of it: pubsub.go), nor a handshake waiting for the bus (its answer
// runs on the loop, and touches the state only when Resolve finds the
// same connection waiting: auth.go).
type connState struct {
	// member holds the loop's handle of the connection, and its entry in
	// its topic's subscriber lists (pubsub and bridge routes with a
	// topic), set by OnOpen and read by OnMessage and OnClose (loop
	// goroutine). lc is set by OnRequest for every connection, the group
	// by OnOpen.
	member subscriber

	rt atomic.Pointer[route]

	// x is the state of the connections that need more: attached on the
	// loop before OnOpen (Custom routes, a client address named by
	// X-Forwarded-For, authorisation over the bus), by OnOpen with a bus,
	// or by SetData from any goroutine; never replaced while the
	// connection lasts (see extra). It names its connection (connExtra.id).
	x atomic.Pointer[connExtra]

	// Pubsub and bridge routes: the topic's name, interned; set before
	// OnOpen, nil on other routes.
	topicName atomic.Pointer[string]

	// meta holds the kind (bits 0..7), the stXxx flags (8..15) and the
	// chosen subprotocol (16..31): 0 for none, else 1 + its index in
	// rt.Subprotocols (at most maxSubprotocols long, so it fits).
	meta atomic.Uint32
}

// connState flags, in meta.
const (
	stDeflate uint32 = 1 << (8 + iota) // the handshake agreed to permessage-deflate
	stClosed                           // the connection ended (OnClose ran or is running)
	stKeep                             // never reused: see connState
)

// lc returns the loop's handle of c's connection. On the loop, or under a
// lock that orders the read after OnRequest (the registry's).
func (c *connState) lc() loop.Conn { return c.member.lc }

// route returns c's route.
func (c *connState) route() *route { return c.rt.Load() }

// kind returns c's behaviour kind.
func (c *connState) kind() uint8 { return uint8(c.meta.Load()) }

// has reports whether c has every flag of f.
func (c *connState) has(f uint32) bool { return c.meta.Load()&f == f }

// set adds the flags f to c.
func (c *connState) set(f uint32) { c.meta.Or(f) }

// subIndex returns c's subprotocol field: 0 or 1 + an index.
func (c *connState) subIndex() int { return int(c.meta.Load() >> 16) }

// handle returns the Conn of c's connection.
func (c *connState) handle() Conn { return Conn{c.member.lc, c} }

// stateFor returns the state for a connection whose handshake rt takes,
// on lc: the state of lc's previous connection when it may be reused,
// else a new one; keep marks a state that must never be reused (see
// connState). On the loop, in OnRequest.
func stateFor(lc loop.Conn, rt *route, kind uint8, keep bool) *connState {
	c, _ := lc.Context().(*connState)
	if keep || c == nil || c.has(stKeep) {
		c = new(connState)
		lc.SetContext(c) // replaces one that is never reused
	} else {
		// lc's id changed before this (the loop's accept): a handle of
		// the previous connection that reads what follows sees its
		// Current fail.
		c.x.Store(nil)
		c.topicName.Store(nil)
		c.member = subscriber{}
	}
	c.member.lc = lc
	c.rt.Store(rt)
	m := uint32(kind)
	if keep {
		m |= stKeep
	}
	c.meta.Store(m)
	return c
}

// stateOf returns the state of lc's connection that OnRequest set, nil
// when it set none. On the loop, in the callbacks after OnRequest.
func stateOf(lc loop.Conn) *connState {
	c, _ := lc.Context().(*connState)
	if c == nil || c.member.lc != lc {
		return nil
	}
	return c
}

// connExtra is what some connections need besides their connState. The
// fields written before OnOpen (all but bc and joined) are read-only after
// it: any goroutine may read them then. A connExtra serves one connection
// (id) and is never reused.
type connExtra struct {
	id     uint64       // the connection's id
	req    *Request     // Custom routes and streams: the copied request
	proto  *Protocol    // streams: their protocol
	tun    *tunnelState // tunnels
	client netip.Addr   // the client address, when X-Forwarded-For named one other than the peer

	// With a bus (Config.NATS): the user and topics the connection's
	// authorisation gave (set on the loop before the 101); its description
	// on the bus, set by OnOpen; its entries in the subscriber lists of
	// those topics (loop goroutine).
	user   string
	joins  []string
	bc     *bus.Conn
	joined []*subscriber

	data atomic.Pointer[dataBox]
}

// extraOf returns the connExtra of connection id, nil when it has none (or
// c serves another connection by now). Any goroutine.
func (c *connState) extraOf(id uint64) *connExtra {
	if x := c.x.Load(); x != nil && x.id == id {
		return x
	}
	return nil
}

// extra returns the connExtra of c's connection, attaching an empty one
// when it has none. On the loop.
func (c *connState) extra() *connExtra { return c.attach(c.member.lc.ID()) }

// attach returns the connExtra of connection id, attaching an empty one
// when c has none for it: also in place of one a goroutine holding a
// handle of an earlier connection of c attached late (SetData racing the
// reuse). Any goroutine; the caller holds a handle of connection id.
func (c *connState) attach(id uint64) *connExtra {
	for {
		old := c.x.Load()
		if old != nil && old.id == id {
			return old
		}
		x := &connExtra{id: id}
		if c.x.CompareAndSwap(old, x) {
			return x
		}
	}
}

// setSubprotocol records the chosen subprotocol, a view of the request
// equal to one of rt.Subprotocols (parser.Request.SelectSubprotocol chose
// it from that list). On the loop, before OnOpen.
func (c *connState) setSubprotocol(sub []byte) {
	for i, s := range c.route().Subprotocols {
		if string(sub) == s {
			c.meta.Store(c.meta.Load()&0xffff | uint32(i+1)<<16)
			return
		}
	}
}

type dataBox struct{ v any }

// IsZero reports whether c is the zero Conn, the handle of no connection.
func (c Conn) IsZero() bool { return c.s == nil }

// ID returns the connection's identifier, unique within the gateway, as used
// by Gateway.Send, Gateway.Disconnect and the admin API. Any goroutine; it
// never changes, also after the connection ended. 0 for the zero Conn.
func (c Conn) ID() uint64 { return c.lc.ID() }

// state returns c's state while it still serves c's connection, else nil.
// The answer may be stale at once: a caller that reads the state checks
// c.lc.Current after.
func (c Conn) state() *connState {
	if c.s == nil || !c.lc.Current() {
		return nil
	}
	return c.s
}

// Send sends one message: op is OpText (payload must be valid UTF-8; it is
// not checked) or OpBinary; OpPing and OpPong (at most 125 bytes) work too.
// Any goroutine: the frame is copied into a pooled buffer and queued to the
// connection's event loop, which writes it on its next turn, in the order
// queued. It returns ErrClosed once the close handshake began and
// ErrSlowConsumer when the outbound queue is full (the connection is then
// closed with 1008).
func (c Conn) Send(op OpCode, payload []byte) error {
	// The loop's handle answers for the connection: it is closing or
	// closed (ErrClosed) before the gateway's OnClose marks its state.
	return c.lc.Send(ws.OpCode(op), payload)
}

// closedErr is what a write through the zero Conn or a closed one returns.
func (c Conn) closedErr() error {
	if c.s == nil {
		return loop.ErrNotOpen
	}
	return ErrClosed
}

// Write is Send for the connection's own event loop goroutine: inside a
// Handler callback of c, or of another connection of the same loop. It
// writes at once, with no queue and no allocation: the way to answer a
// message from OnMessage. Calling it from any other goroutine is a data
// race; use Send there. Errors are those of Send.
func (c Conn) Write(op OpCode, payload []byte) error {
	return c.lc.Write(ws.OpCode(op), payload) // see Send
}

// Close starts the close handshake with code and reason (at most 123 bytes
// of UTF-8 are sent), behind every message queued before. Any goroutine.
// Handler.OnClose follows once the peer answered or Timeouts.Close passed.
// It returns ErrClosed when the handshake already began, or an error for a
// code that may not be sent.
func (c Conn) Close(code StatusCode, reason string) error {
	if c.Closed() {
		return c.closedErr()
	}
	if c.s.kind() == kindTunnel {
		// An earlier connection's tunnel, if the state was reused
		// meanwhile: closing it again is harmless.
		if t := c.tunnelOf(); t != nil {
			t.Close()
			return nil
		}
	}
	return c.lc.Close(ws.StatusCode(code), reason)
}

// Data returns the value last given to SetData, or nil. Any goroutine.
func (c Conn) Data() any {
	if s := c.s; s != nil {
		if x := s.extraOf(c.ID()); x != nil {
			if b := x.data.Load(); b != nil {
				return b.v
			}
		}
	}
	return nil
}

// SetData attaches a value of the application's to the connection. Any
// goroutine; the gateway never reads it. It does nothing once the
// connection has ended and its state serves another.
func (c Conn) SetData(v any) {
	if s := c.state(); s != nil {
		s.attach(c.ID()).data.Store(&dataBox{v})
	}
}

// Request returns the copied handshake request of a Custom route, or nil for
// the built-in behaviours. Any goroutine.
func (c Conn) Request() *Request {
	if s := c.s; s != nil {
		if x := s.extraOf(c.ID()); x != nil {
			return x.req
		}
	}
	return nil
}

// Route returns the configured path of the connection's route. Any
// goroutine; "" once the connection ended and its state serves another.
func (c Conn) Route() string {
	if rt := c.routeOf(); rt != nil {
		return rt.Path
	}
	return ""
}

// routeOf returns the route of c's connection, nil when c's state serves
// another by now. Any goroutine.
func (c Conn) routeOf() *route {
	if c.s == nil {
		return nil
	}
	rt := c.s.route()
	if !c.lc.Current() {
		return nil
	}
	return rt
}

// Topic returns the topic of a pubsub connection, else "". Any goroutine.
func (c Conn) Topic() string {
	if c.s == nil {
		return ""
	}
	name := c.s.topic()
	if !c.lc.Current() {
		return ""
	}
	return name
}

// topic returns the name of c's topic, "" when it has none.
func (c *connState) topic() string {
	if p := c.topicName.Load(); p != nil {
		return *p
	}
	return ""
}

// Subprotocol returns the negotiated subprotocol, or "". Any goroutine.
func (c Conn) Subprotocol() string {
	if c.s == nil {
		return ""
	}
	sub := c.s.subprotocol()
	if !c.lc.Current() {
		return ""
	}
	return sub
}

// subprotocol returns the subprotocol setSubprotocol recorded, or "". Any
// goroutine: meta and rt are read once each, and a subprotocol index is
// only ever recorded for its own route's list.
func (c *connState) subprotocol() string {
	m, rt := c.meta.Load(), c.route()
	i := int(m >> 16)
	if i == 0 || rt == nil || i > len(rt.Subprotocols) {
		return ""
	}
	return rt.Subprotocols[i-1]
}

// ClientAddr returns the client's address (see Request.ClientAddr). Any
// goroutine.
func (c Conn) ClientAddr() netip.Addr {
	if s := c.s; s != nil {
		if x := s.extraOf(c.ID()); x != nil && x.client.IsValid() {
			return x.client
		}
	}
	return c.lc.ClientAddr().Addr().Unmap()
}

// RemoteAddr returns the TCP peer's address: the load balancer's with
// Config.ProxyProtocol. Any goroutine.
func (c Conn) RemoteAddr() net.Addr { return c.lc.RemoteAddr() }

// Closed reports whether the connection has ended (Handler.OnClose ran or is
// running). Any goroutine. True for the zero Conn.
func (c Conn) Closed() bool {
	if c.s == nil {
		return true
	}
	closed := c.s.has(stClosed)
	return closed || !c.lc.Current()
}
