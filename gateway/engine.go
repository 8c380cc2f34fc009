package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// engine is the Gateway seen by the event loop: it implements loop.Handler
// without exporting those methods on Gateway. Every method runs on the
// event loop goroutine of its connection.
type engine Gateway

var _ loop.Handler = (*engine)(nil)

// Plain answers of the gateway's own paths.
var (
	bodyOK      = []byte("ok\n")
	bodyReady   = []byte("ready\n")
	bodyDrained = []byte("draining\n")

	bodyMethodNotAllowed = []byte("This path answers GET and HEAD only.\n")
	bodyNotImplemented   = []byte("Unknown request method.\n")
)

// allowHealth is the Allow header of the health paths' 405.
const allowHealth = "Allow: GET, HEAD\r\n"

const textPlain = "text/plain; charset=utf-8"

// Reasons of refused handshakes: the bodies of the error responses, plain
// sentences for the client; the close reason of a refused publish.
const (
	reasonOrigin      = "Origin not allowed."
	reasonSubprotocol = "No supported subprotocol offered."
	reasonTopic       = "Missing or invalid topic."
	reasonFull        = "Too many connections; retry later."
	reasonRate        = "Too many new connections; retry later."
	reasonNotFound    = "No route for this path."
	reasonForbidden   = "Handshake not authorized."
	reasonBadTopics   = "The authorisation service named an invalid topic."
	reasonPublish     = "publishing is not allowed on this route"
	reasonBehind      = "server busy: message not delivered, try again later"
)

// OnRequest routes a complete request head: the health paths, then the
// route table; for a WebSocket handshake it applies the route's origin and
// subprotocol rules and the connection limits, and on success attaches the
// connection's state and accepts. Echo routes allocate only the Conn;
// pubsub routes add the subscriber group's new snapshot.
func (e *engine) OnRequest(r *loop.Request, d *loop.Decision) {
	g := (*Gateway)(e)
	h := r.Head
	path := h.Path()
	if r.WebSocketErr != nil {
		// An invalid WebSocket handshake is answered as such unless the
		// route may switch to another protocol of the Upgrade list.
		if rt, _ := g.routes.match(path); rt == nil || !rt.streams {
			d.RejectError(r.WebSocketErr)
			return
		}
	}
	switch string(path) {
	case "/healthz":
		if healthMethod(d, h.Method(), &g.health) {
			g.health.http(200)
			respond(d, 200, bodyOK)
		}
		return
	case "/readyz":
		if !healthMethod(d, h.Method(), &g.ready) {
			return
		}
		if g.draining.Load() {
			g.ready.http(503)
			respond(d, 503, bodyDrained)
			return
		}
		if ok, state := g.busReady(); !ok {
			g.ready.http(503)
			respond(d, 503, busNotReady(state))
			return
		}
		g.ready.http(200)
		respond(d, 200, bodyReady)
		return
	}
	rt, seg := g.routes.match(path)
	if rt == nil {
		if r.WebSocket {
			g.unrouted.handshake(404)
		} else {
			g.unrouted.http(404)
		}
		d.Reject(404, reasonNotFound)
		return
	}
	if rt.streams {
		a, p, ver, ok := rt.negotiate(h)
		switch {
		case ok && a.builtin == "":
			g.openStream(r, d, rt, a, switchToken(p, ver))
			return
		case ok && a.builtin == protoTCP:
			g.openTunnel(r, d, rt, false, nil)
			return
		case ok && r.WebSocketErr != nil:
			// WebSocket was the client's choice, with a broken handshake.
			rt.stats.handshake(r.WebSocketErr.Status)
			d.RejectError(r.WebSocketErr)
			return
		}
	}
	if !r.WebSocket {
		// An upgrade to a protocol the route does not speak (h2c, ...)
		// is ignored (RFC 9110 §7.8): a route that speaks plain HTTP
		// answers as it would without it.
		if rt.PlainHTTP {
			rt.stats.http(200)
			respond(d, 200, rt.plainBody)
			return
		}
		rt.stats.http(426)
		d.RequireUpgradeOf(rt.offer)
		return
	}
	if rt.kind == kindStream {
		// A WebSocket handshake on a route that does not speak it.
		rt.stats.http(426)
		d.RequireUpgradeOf(rt.offer)
		return
	}
	if !rt.originOK(h.Origin()) {
		g.refuse(rt, d, rejOrigin, 403, reasonOrigin, "")
		return
	}
	sub, err := h.SelectSubprotocol(rt.Subprotocols)
	if err != nil {
		g.rejectHeader(rt, d, rejSubprotocol, err, parser.ErrBadSubprotocols)
		return
	}
	if sub == nil && rt.RequireSubprotocol {
		g.refuse(rt, d, rejSubprotocol, 400, reasonSubprotocol, "")
		return
	}
	if rt.kind == kindTunnel {
		g.openTunnel(r, d, rt, true, sub)
		return
	}
	var pmd deflate.Params
	var agreed bool
	if rt.deflate {
		it := h.Extensions()
		var err error
		if pmd, agreed, err = deflate.Negotiate(&it, deflateConfig); err != nil {
			g.rejectHeader(rt, d, rejExtensions, err, parser.ErrBadExtensions)
			return
		}
	}
	var topic []byte
	if rt.kind == kindPubSub || (rt.kind == kindCustom || rt.kind == kindBridge) && rt.pattern {
		var ok bool
		if topic, ok = topicOf(seg, h.Query()); !ok && rt.kind == kindPubSub {
			g.refuse(rt, d, rejTopic, 400, reasonTopic, "")
			return
		}
	}
	if !g.acquireSlot() {
		g.refuse(rt, d, rejMaxConnections, 503, reasonFull, retryAfterHeaders[retryAfterFull])
		return
	}
	if g.bucket != nil {
		if ok, wait := g.bucket.take(time.Now()); !ok {
			g.releaseSlot()
			g.refuse(rt, d, rejConnectRate, 429, reasonRate, retryAfter(wait))
			return
		}
	}
	// A handshake that waits for the bus keeps c in the closure its answer
	// runs on the loop (deferAuth), which touches c only when Resolve finds
	// the same connection waiting: c may be reused like any other state.
	c := stateFor(r.Conn, rt, rt.kind, false)
	if agreed {
		c.set(stDeflate)
	}
	peer := r.Conn.ClientAddr().Addr()
	client := g.clientAddr(peer, h)
	if client != peer.Unmap() {
		c.extra().client = client // else derived from lc
	}
	if sub != nil {
		c.setSubprotocol(sub)
	}
	switch rt.kind {
	case kindPubSub:
		c.topicName.Store(g.topics.intern(topic))
	case kindBridge:
		if topic != nil {
			c.topicName.Store(g.topics.intern(topic))
		}
	case kindCustom:
		req := copyRequest(h)
		req.Route, req.Topic = rt.Path, string(topic)
		req.Subprotocol, req.RemoteAddr, req.ClientAddr = c.handle().Subprotocol(), r.Conn.RemoteAddr(), client
		req.TLS = tlsState(r.Conn.TLS())
		c.extra().req = req
		if rt.authz != nil {
			if err := rt.authz.Authorize(req); err != nil {
				g.releaseSlot()
				status, reason := 403, reasonForbidden
				var re *RejectError
				if errors.As(err, &re) && re.Status >= 400 && re.Status <= 599 {
					status, reason = re.Status, re.Reason
				}
				g.refuse(rt, d, rejAuthorize, status, reason, "")
				return
			}
		}
	}
	if rt.Auth {
		g.deferAuth(r, d, c, pmd)
		return
	}
	upgrade(d, c, sub, pmd)
}

// deflateConfig is what the routes agree to: no context takeover, any
// window the client asks the server to keep within.
var deflateConfig = deflate.Config{}

// upgrade accepts the handshake of c with subprotocol sub, and with the
// permessage-deflate agreement pmd when c agreed to it.
func upgrade(d *loop.Decision, c *connState, sub []byte, pmd deflate.Params) {
	rt := c.route()
	d.Upgrade(sub, nil, rt.maxMessage)
	if c.has(stDeflate) {
		d.Deflate(pmd, rt.deflateLevel, rt.deflateThreshold)
	}
}

// healthMethod reports whether a request of the health paths uses GET or
// HEAD, the methods they serve; otherwise it answers it and counts it in
// rs. A method of HTTP's that they do not serve, OPTIONS included, is
// answered 405 with Allow (RFC 9110 §15.5.6), a method upgate does not
// know 501 (§9.1). Probes should not send OPTIONS, and Allow already says
// what OPTIONS would.
func healthMethod(d *loop.Decision, method []byte, rs *routeStats) bool {
	switch {
	case string(method) == "GET" || string(method) == "HEAD":
		return true
	case parser.KnownMethod(method):
		rs.http(405)
		d.Respond(405, allowHealth, textPlain, bodyMethodNotAllowed)
	default:
		rs.http(501)
		d.Respond(501, "", textPlain, bodyNotImplemented)
	}
	return false
}

// busNotReady is the /readyz answer while the bus is not connected.
func busNotReady(state string) []byte { return []byte("bus " + state + "\n") }

// respond answers a plain request with a text body. The loop answers HEAD
// with the same head and no content.
func respond(d *loop.Decision, status int, body []byte) {
	d.Respond(status, "", textPlain, body)
}

// refuse answers a handshake with an error status and counts it.
func (g *Gateway) refuse(rt *route, d *loop.Decision, reason, status int, body, header string) {
	g.stats.rejections[reason].Add(1)
	rt.stats.handshake(status)
	d.Reject(status, body)
	d.Header = header
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("gateway: handshake refused", "route", rt.Path, "status", status, "reason", rejectionNames[reason])
	}
}

// OnOpen registers a connection whose 101 is written, subscribes it to its
// topic and hands Custom connections to the Handler.
func (e *engine) OnOpen(lc loop.Conn) {
	g := (*Gateway)(e)
	c := stateOf(lc)
	if c == nil {
		_ = lc.WriteClose(ws.StatusInternalServerError, "no connection state")
		return
	}
	if at := lc.AcceptedAt(); !at.IsZero() {
		g.stats.handshakeTime.observe(time.Since(at))
	}
	g.conns.add(c)
	rt := c.route()
	rt.stats.open.Add(1)
	rt.stats.handshake(101)
	if c.has(stDeflate) {
		rt.stats.deflate.Add(1)
	}
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("gateway: connection open", "id", lc.ID(), "route", rt.Path, "client", c.handle().ClientAddr(), "topic", c.topic(), "subprotocol", c.handle().Subprotocol())
	}
	c.member.group = g.topics.group(lc.LoopIndex())
	if name := c.topic(); name != "" && (c.kind() == kindPubSub || c.kind() == kindBridge) {
		g.topics.subscribe(name, &c.member)
	}
	x := c.x.Load()
	if x != nil && len(x.joins) > 0 {
		g.joinTopics(c, x)
	}
	if g.bus != nil {
		g.busOpened(c)
	}
	if c.kind() == kindCustom {
		rt.h.OnOpen(c.handle(), x.req)
	}
}

// OnMessage is the per-message path: no lock, no allocation. Echo writes the
// message back on the loop; pubsub publishes it to the connection's topic
// (one shared frame); Custom hands it to the Handler. payload is only valid
// during the call.
func (e *engine) OnMessage(lc loop.Conn, op ws.OpCode, payload []byte) {
	c := stateOf(lc)
	if c == nil {
		return
	}
	switch c.kind() {
	case kindEcho:
		_ = lc.Write(op, payload)
	case kindPubSub:
		rt := c.route()
		if !rt.Publish {
			if lc.WriteClose(ws.StatusPolicyViolation, reasonPublish) == nil {
				(*Gateway)(e).stats.rejections[rejPublishDenied].Add(1)
			}
			return
		}
		g := (*Gateway)(e)
		t := c.member.topic
		if g.behind(t, lc.LoopIndex(), len(payload)) {
			// Nothing is delivered and the publisher is told: 1013,
			// try again later (fanout.go).
			g.stats.refused[srcClient].Add(1)
			_ = lc.WriteClose(ws.StatusCode(StatusTryAgainLater), reasonBehind)
			return
		}
		n := g.fanout(t, OpCode(op), payload, lc.LoopIndex())
		rt.stats.publishes.Add(1)
		rt.stats.deliveries.Add(uint64(n))
		if g.bus != nil {
			_ = g.bus.Publish(c.topic(), bus.OpCode(op), payload)
		}
	case kindBridge:
		_ = e.bus.Forward(c.busConn(), bus.OpCode(op), payload)
	case kindCustom:
		c.route().h.OnMessage(c.handle(), OpCode(op), payload)
	}
}

// OnClose unsubscribes and unregisters an ended connection, releases its
// slot, counts its close code and tells the Handler.
func (e *engine) OnClose(lc loop.Conn, code ws.StatusCode, err error) {
	g := (*Gateway)(e)
	c := stateOf(lc)
	if c == nil {
		return
	}
	c.set(stClosed)
	if c.member.topic != nil {
		g.topics.unsubscribe(&c.member)
	}
	if x := c.x.Load(); x != nil {
		for _, s := range x.joined {
			g.topics.unsubscribe(s)
		}
		if x.bc != nil {
			g.bus.Event(bus.EventClose, x.bc, uint16(code))
		}
	}
	g.conns.remove(c)
	g.releaseSlot()
	rt := c.route()
	rt.stats.open.Add(-1)
	rt.stats.closes[closeSlot(code)].Add(1)
	if frame.CodeOf(err) == ws.StatusMessageTooBig {
		g.stats.rejections[rejMaxMessage].Add(1)
	}
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("gateway: connection closed", "id", lc.ID(), "route", rt.Path, "code", int(code), "err", err)
	}
	if c.kind() == kindCustom {
		rt.h.OnClose(c.handle(), StatusCode(code), err)
	}
}

// rejectHeader answers a handshake whose header field the parser found
// malformed (err, or fallback when err is not the parser's) with the
// parser's status, counted under the rejection reason why.
func (g *Gateway) rejectHeader(rt *route, d *loop.Decision, why int, err error, fallback *parser.Error) {
	pe, _ := err.(*parser.Error)
	if pe == nil {
		pe = fallback
	}
	g.stats.rejections[why].Add(1)
	rt.stats.handshake(pe.Status)
	d.RejectError(pe)
}
