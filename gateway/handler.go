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
	OnOpen(c *Conn, r *Request)

	// OnMessage delivers one complete text or binary message (op is OpText
	// or OpBinary; text is valid UTF-8). payload points into the event
	// loop's read buffer and is valid only until OnMessage returns: copy it
	// to keep it. A c.Write from inside OnMessage writes on the loop with
	// no allocation and no copy beyond the write path's own.
	OnMessage(c *Conn, op OpCode, payload []byte)

	// OnClose is called once when the connection has ended. code is the
	// close code of the handshake (the peer's when the peer started it,
	// 1005 when its close frame had none, the server's when the server
	// did, 1006 when TCP ended without a close frame); err is nil for a
	// completed close handshake, else why the connection ended (a protocol
	// error, ErrSlowConsumer, a timeout, the shutdown, ...). After OnClose
	// every method of c that sends returns ErrClosed.
	OnClose(c *Conn, code StatusCode, err error)
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

// Conn is the gateway's handle of one WebSocket connection. Its methods are
// safe to call from any goroutine, except Write, which belongs to the
// connection's event loop. A Conn may outlive its connection: once the
// close handshake began, Send, Write, Ping and Close return ErrClosed.
//
// Every connection has one, so it keeps only what every connection needs
// (80 bytes on 64-bit platforms, a size class of its own): what only some
// connections need is in a connExtra, attached to those alone.
type Conn struct {
	lc *loop.Conn
	rt *route

	// x is the state of the connections that need more: attached on the
	// loop before OnOpen (Custom routes, a client address named by
	// X-Forwarded-For, authorisation over the bus), by OnOpen with a bus,
	// or by SetData from any goroutine; never replaced after (see extra).
	x atomic.Pointer[connExtra]

	// Pubsub and bridge routes: the topic, interned; set before OnOpen.
	topicName string
	// c in its topic's subscriber list (pubsub and bridge routes with a
	// topic): set by OnOpen, read by OnMessage and OnClose (loop
	// goroutine). Its group is set by OnOpen for every connection.
	subscription subscriber

	closed atomic.Bool
	kind   uint8
	flags  uint8 // connDeflate
	// sub is the chosen subprotocol: 0 for none, else 1 + its index in
	// rt.Subprotocols (at most maxSubprotocols long, so it fits).
	sub uint16
}

// Conn.flags.
const (
	connDeflate uint8 = 1 << iota // the handshake agreed to permessage-deflate
)

// connExtra is what some connections need besides their Conn. The fields
// written before OnOpen (all but bc and joined) are read-only after it:
// any goroutine may read them then.
type connExtra struct {
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

// extra returns the connExtra of c, attaching an empty one when it has
// none. Any goroutine.
func (c *Conn) extra() *connExtra {
	if x := c.x.Load(); x != nil {
		return x
	}
	x := new(connExtra)
	if c.x.CompareAndSwap(nil, x) {
		return x
	}
	return c.x.Load()
}

// setSubprotocol records the chosen subprotocol, a view of the request
// equal to one of rt.Subprotocols (parser.Request.SelectSubprotocol chose
// it from that list). On the loop, before OnOpen.
func (c *Conn) setSubprotocol(sub []byte) {
	for i, s := range c.rt.Subprotocols {
		if string(sub) == s {
			c.sub = uint16(i + 1)
			return
		}
	}
}

type dataBox struct{ v any }

// ID returns the connection's identifier, unique within the gateway, as used
// by Gateway.Send, Gateway.Disconnect and the admin API. Any goroutine.
func (c *Conn) ID() uint64 { return c.lc.ID() }

// Send sends one message: op is OpText (payload must be valid UTF-8; it is
// not checked) or OpBinary; OpPing and OpPong (at most 125 bytes) work too.
// Any goroutine: the frame is copied into a pooled buffer and queued to the
// connection's event loop, which writes it on its next turn, in the order
// queued. It returns ErrClosed once the close handshake began and
// ErrSlowConsumer when the outbound queue is full (the connection is then
// closed with 1008).
func (c *Conn) Send(op OpCode, payload []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.lc.Send(ws.OpCode(op), payload)
}

// Write is Send for the connection's own event loop goroutine: inside a
// Handler callback of c, or of another connection of the same loop. It
// writes at once, with no queue and no allocation: the way to answer a
// message from OnMessage. Calling it from any other goroutine is a data
// race; use Send there. Errors are those of Send.
func (c *Conn) Write(op OpCode, payload []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.lc.Write(ws.OpCode(op), payload)
}

// Close starts the close handshake with code and reason (at most 123 bytes
// of UTF-8 are sent), behind every message queued before. Any goroutine.
// Handler.OnClose follows once the peer answered or Timeouts.Close passed.
// It returns ErrClosed when the handshake already began, or an error for a
// code that may not be sent.
func (c *Conn) Close(code StatusCode, reason string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.kind == kindTunnel {
		if t := c.tunnelOf(); t != nil {
			t.Close()
			return nil
		}
	}
	return c.lc.Close(ws.StatusCode(code), reason)
}

// Data returns the value last given to SetData, or nil. Any goroutine.
func (c *Conn) Data() any {
	if x := c.x.Load(); x != nil {
		if b := x.data.Load(); b != nil {
			return b.v
		}
	}
	return nil
}

// SetData attaches a value of the application's to the connection. Any
// goroutine; the gateway never reads it.
func (c *Conn) SetData(v any) { c.extra().data.Store(&dataBox{v}) }

// Request returns the copied handshake request of a Custom route, or nil for
// the built-in behaviours. Any goroutine.
func (c *Conn) Request() *Request {
	if x := c.x.Load(); x != nil {
		return x.req
	}
	return nil
}

// Route returns the configured path of the connection's route. Any goroutine.
func (c *Conn) Route() string { return c.rt.Path }

// Topic returns the topic of a pubsub connection, else "". Any goroutine.
func (c *Conn) Topic() string { return c.topicName }

// Subprotocol returns the negotiated subprotocol, or "". Any goroutine.
func (c *Conn) Subprotocol() string {
	if c.sub == 0 {
		return ""
	}
	return c.rt.Subprotocols[c.sub-1]
}

// ClientAddr returns the client's address (see Request.ClientAddr). Any
// goroutine.
func (c *Conn) ClientAddr() netip.Addr {
	if x := c.x.Load(); x != nil && x.client.IsValid() {
		return x.client
	}
	return c.lc.ClientAddr().Addr().Unmap()
}

// RemoteAddr returns the TCP peer's address: the load balancer's with
// Config.ProxyProtocol. Any goroutine.
func (c *Conn) RemoteAddr() net.Addr { return c.lc.RemoteAddr() }

// Closed reports whether the connection has ended (Handler.OnClose ran or is
// running). Any goroutine.
func (c *Conn) Closed() bool { return c.closed.Load() }
