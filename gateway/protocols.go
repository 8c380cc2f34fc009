package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/parser"
)

// Protocol is a protocol other than WebSocket that routes may switch to
// with HTTP's Upgrade mechanism (RFC 9110 §7.8), registered with
// WithProtocol and named in Route.Protocols. After the 101 Switching
// Protocols the connection is a byte stream of that protocol, served by
// Handler on the event loop.
type Protocol struct {
	// Name is the protocol's Upgrade token ("foo" in "Upgrade: foo/2").
	// Names compare without regard to case. "websocket" and "tcp" are the
	// gateway's own.
	Name string
	// Versions lists the versions the protocol speaks ("2" in "foo/2").
	// Empty accepts any version. A request that names the protocol
	// without a version matches too: the 101 then names the first
	// version listed (the one the gateway prefers), or none.
	Versions []string
	// Handler serves the connections switched to the protocol.
	Handler StreamHandler
}

// StreamHandler serves the connections of a Protocol. Every method runs
// on the event loop goroutine that owns the connection, never concurrently
// for one connection, and must return quickly without blocking, as
// Handler's do. A stream connection's Conn takes WriteData (on the loop),
// SendData (any goroutine) and Close; its Send, Write and Ping return
// ErrStream. Limits.MaxOutbound bounds what is queued for it (beyond, the
// connection ends as a slow consumer) and Limits.IdleTimeout its silence.
// A stream has no half-close: the event loop ends a connection whose peer
// sent FIN.
type StreamHandler interface {
	// OnStreamOpen is called once the 101 is written; r is the request,
	// copied, with Request.Protocol set. Bytes written from it follow the
	// 101.
	OnStreamOpen(c Conn, r *Request)
	// OnData delivers the bytes that arrived, in order, beginning with
	// those sent behind the request head. p is valid only during the call.
	OnData(c Conn, p []byte)
	// OnStreamClose is called once when the connection has ended: err is
	// nil when the peer (FIN) or the server (Close) ended it, else why.
	OnStreamClose(c Conn, err error)
}

// WithProtocol registers p for the routes that name it in Route.Protocols.
// New fails for a route naming a protocol not registered, for two
// registrations of one name, and for a Protocol without Handler.
func WithProtocol(p Protocol) Option {
	return func(g *Gateway) { g.protocols = append(g.protocols, p) }
}

// ErrStream is returned by the message methods (Send, Write, Ping) of a
// stream connection, and ErrNotStream by WriteData and SendData on a
// WebSocket one.
var (
	ErrStream    = loop.ErrStream
	ErrNotStream = loop.ErrNotStream
)

// Built-in protocol names.
const (
	protoWebSocket = "websocket"
	protoTCP       = "tcp"
)

// acceptor is what one element of a route's accepted list switches to.
type acceptor struct {
	builtin string    // protoWebSocket or protoTCP; "" for a registered one
	p       *Protocol // registered protocols
}

// setProtocols resolves the protocols rt accepts, in the gateway's order
// of preference: those Route.Protocols names, in its order, then the
// behaviour's own (websocket, or tcp) unless listed. Each is flattened
// into one parser.Protocol per version for SelectUpgrade.
func (rt *route) setProtocols(reg map[string]*Protocol) error {
	own := protoWebSocket
	switch rt.Behaviour {
	case Stream:
		own = ""
	case TCP:
		own = protoTCP
		rt.streams = true
	}
	names := append([]string(nil), rt.Protocols...)
	if own != "" && !containsFold(names, own) {
		names = append(names, own)
	}
	for _, name := range names {
		lname := strings.ToLower(name)
		switch lname {
		case protoWebSocket, protoTCP:
			if lname != own {
				return fmt.Errorf("the route's behaviour %s does not speak %s", rt.Behaviour, lname)
			}
			rt.accept = append(rt.accept, parser.Protocol{Name: lname})
			rt.acceptors = append(rt.acceptors, acceptor{builtin: lname})
			rt.offer = append(rt.offer, parser.Protocol{Name: lname})
			continue
		}
		p := reg[lname]
		if p == nil {
			return fmt.Errorf("no protocol %q is registered (WithProtocol)", name)
		}
		rt.streams = true
		if len(p.Versions) == 0 {
			rt.accept = append(rt.accept, parser.Protocol{Name: p.Name})
			rt.acceptors = append(rt.acceptors, acceptor{p: p})
			rt.offer = append(rt.offer, parser.Protocol{Name: p.Name})
			continue
		}
		for _, v := range p.Versions {
			rt.accept = append(rt.accept, parser.Protocol{Name: p.Name, Version: v})
			rt.acceptors = append(rt.acceptors, acceptor{p: p})
			rt.offer = append(rt.offer, parser.Protocol{Name: p.Name, Version: v})
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// protocolRegistry checks the protocols given with WithProtocol and
// indexes them by lower-case name.
func protocolRegistry(ps []Protocol) (map[string]*Protocol, error) {
	reg := make(map[string]*Protocol, len(ps))
	for i := range ps {
		p := &ps[i]
		lname := strings.ToLower(p.Name)
		switch {
		case !isToken(p.Name):
			return nil, fmt.Errorf("gateway: protocol name %q is not an HTTP token", p.Name)
		case lname == protoWebSocket || lname == protoTCP || lname == "h2c" || lname == "http":
			return nil, fmt.Errorf("gateway: protocol name %q is reserved", p.Name)
		case reg[lname] != nil:
			return nil, fmt.Errorf("gateway: protocol %q registered twice", p.Name)
		case p.Handler == nil:
			return nil, fmt.Errorf("gateway: protocol %q has no Handler", p.Name)
		}
		for _, v := range p.Versions {
			if !isToken(v) {
				return nil, fmt.Errorf("gateway: protocol %q: version %q is not an HTTP token", p.Name, v)
			}
		}
		reg[lname] = p
	}
	return reg, nil
}

// negotiate picks what a request on a route with protocols besides
// WebSocket switches to: the client's most preferred protocol the route
// accepts (RFC 9110 §7.8). It reports false when the request asks for
// none of them; ver is the version the client named.
func (rt *route) negotiate(h *parser.Request) (a acceptor, p parser.Protocol, ver []byte, ok bool) {
	i, ver := h.SelectUpgrade(rt.accept)
	if i < 0 {
		return acceptor{}, parser.Protocol{}, nil, false
	}
	return rt.acceptors[i], rt.accept[i], ver, true
}

// switchToken returns the Upgrade token of the 101: the protocol's name
// and the version the client named, else the route's version, if any.
func switchToken(p parser.Protocol, ver []byte) []byte {
	b := []byte(p.Name)
	if len(ver) == 0 && p.Version != "" {
		ver = []byte(p.Version)
	}
	if len(ver) > 0 {
		b = append(append(b, '/'), ver...)
	}
	return b
}

// openStream accepts a switch to the registered protocol a on route rt:
// the connection's state with a copy of the request for the handler.
func (g *Gateway) openStream(r *loop.Request, d *loop.Decision, rt *route, a acceptor, token []byte) {
	if !g.acquireSlot() {
		g.refuse(rt, d, rejMaxConnections, 503, reasonFull, retryAfterHeaders[retryAfterFull])
		return
	}
	c := stateFor(r.Conn, rt, kindStream, false)
	req := copyRequest(r.Head)
	req.Route, req.Protocol = rt.Path, string(token)
	req.RemoteAddr = r.Conn.RemoteAddr()
	req.ClientAddr = g.clientAddr(r.Conn.ClientAddr().Addr(), r.Head)
	x := c.extra()
	x.req, x.proto = req, a.p
	d.Switch(token)
}

// OnStreamOpen implements loop.StreamHandler: it registers a stream
// connection and hands it to its protocol's handler.
func (e *engine) OnStreamOpen(lc loop.Conn) {
	g := (*Gateway)(e)
	c := stateOf(lc)
	if c == nil {
		_ = lc.Close(1011, "")
		return
	}
	if at := lc.AcceptedAt(); !at.IsZero() {
		g.stats.handshakeTime.observe(time.Since(at))
	}
	g.conns.add(c)
	rt := c.route()
	rt.stats.open.Add(1)
	rt.stats.handshake(101)
	x := c.x.Load()
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("gateway: stream open", "id", lc.ID(), "route", rt.Path, "protocol", x.req.Protocol, "client", c.handle().ClientAddr())
	}
	x.proto.Handler.OnStreamOpen(c.handle(), x.req)
}

// OnData implements loop.StreamHandler.
func (e *engine) OnData(lc loop.Conn, p []byte) {
	if c := stateOf(lc); c != nil {
		c.x.Load().proto.Handler.OnData(c.handle(), p)
	}
}

// OnStreamClose implements loop.StreamHandler.
func (e *engine) OnStreamClose(lc loop.Conn, err error) {
	g := (*Gateway)(e)
	c := stateOf(lc)
	if c == nil {
		return
	}
	c.set(stClosed)
	g.conns.remove(c)
	g.releaseSlot()
	rt := c.route()
	rt.stats.open.Add(-1)
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("gateway: stream closed", "id", lc.ID(), "route", rt.Path, "err", err)
	}
	c.x.Load().proto.Handler.OnStreamClose(c.handle(), err)
}

// WriteData writes p to a stream connection, on its event loop: from its
// StreamHandler's methods or a function run there. p is written or
// copied before it returns. It returns ErrNotStream on a WebSocket
// connection, ErrClosed once the stream is ending, ErrSlowConsumer when
// Limits.MaxOutbound is passed (the stream then ends).
func (c Conn) WriteData(p []byte) error { return c.lc.WriteStream(p) }

// SendData writes p to a stream connection from any goroutine: p is copied
// and queued behind what was queued before. Errors are WriteData's.
func (c Conn) SendData(p []byte) error { return c.lc.SendStream(p) }

// Protocol returns the Upgrade token the connection switched to: "foo/2"
// for a stream, "tcp" for a tunnel, "websocket" otherwise.
func (c Conn) Protocol() string {
	if r := c.Request(); r != nil && r.Protocol != "" {
		return r.Protocol
	}
	return protoWebSocket
}
