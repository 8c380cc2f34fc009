package gateway

import "github.com/upgate/upgate/loop"

// PingHandler may be implemented by a Handler to see the pings that the
// clients of its Custom routes send: a sign of presence. OnPing runs on
// the connection's event loop goroutine, as the Handler's methods do, once
// the ping is answered: the gateway always answers a ping with its pong
// itself. It must not block; payload (at most 125 bytes) is valid only
// during the call. It is not called once the close handshake began.
type PingHandler interface {
	OnPing(c Conn, payload []byte)
}

// PongHandler may be implemented by a Handler to see the pongs that the
// clients of its Custom routes send: the answers to Conn.Ping, which carry
// its payload back (a time stamp there measures the round trip), to the
// gateway's keepalive pings (Timeouts.Ping; an empty payload), and
// unsolicited ones. OnPong runs on the connection's event loop goroutine
// after the pong counted as a sign of life for the keepalive deadline. It
// must not block; payload is valid only during the call. It is not called
// once the close handshake began.
//
// A gateway whose Handlers implement neither interface pays nothing per
// ping or pong.
type PongHandler interface {
	OnPong(c Conn, payload []byte)
}

// Ping sends a ping with payload (at most 125 bytes) to the client, which
// answers with a pong that carries the same payload, handed to the route
// Handler's OnPong (PongHandler). Any goroutine, queued as Send is; errors
// are those of Send, and ErrControlTooLong over 125 bytes. The gateway pings idle connections by itself
// (Timeouts.Ping): Ping is for an application that wants to measure a
// client's round trip, or to probe it at times of its own.
func (c Conn) Ping(payload []byte) error { return c.Send(OpPing, payload) }

// controlEngine is the engine for a gateway with a route Handler that
// implements PingHandler or PongHandler: only then is the loop handed a
// loop.ControlHandler, and only then does it call it per control frame.
type controlEngine struct{ *engine }

var _ loop.ControlHandler = controlEngine{}

func (e controlEngine) OnPing(lc loop.Conn, payload []byte) {
	if c := stateOf(lc); c != nil && c.route().ping != nil {
		c.route().ping.OnPing(c.handle(), payload)
	}
}

func (e controlEngine) OnPong(lc loop.Conn, payload []byte) {
	if c := stateOf(lc); c != nil && c.route().pong != nil {
		c.route().pong.OnPong(c.handle(), payload)
	}
}

// loopHandler returns what the loop calls: the engine, with the control
// frame hook when a route's Handler wants it.
func (g *Gateway) loopHandler() loop.Handler {
	var h loop.Handler = (*engine)(g)
	for _, rt := range g.routes.all {
		if rt.ping != nil || rt.pong != nil {
			h = controlEngine{(*engine)(g)}
			break
		}
	}
	if g.wrapLoop != nil {
		h = g.wrapLoop(h)
	}
	return h
}
