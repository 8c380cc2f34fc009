//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/parser"
)

// Handler is implemented by the layer above the loop (the gateway). Every
// method is called on the event loop goroutine that owns the connection,
// never concurrently for one connection and never nested in another Handler
// call of the same loop, and must return quickly without blocking: a slow
// handler stalls every connection of its loop. Handlers must not panic, and
// must not call Server.Shutdown.
type Handler interface {
	// OnRequest decides what to do with a complete request head: fill d
	// with d.Upgrade, d.Respond, d.Reject or d.RequireUpgrade, or put the
	// decision off with d.Defer and give it later with Conn.Resolve. A zero
	// Decision answers 404. It is called on the loop goroutine; r and
	// everything reachable from r.Head are valid only during the call, and
	// the slices put in d must stay valid until it returns (the response is
	// written right after). r.Conn may be kept: it is the handle of the
	// WebSocket connection on upgrade, and its SetContext may be called
	// here.
	//
	// Requests the parser rejects (malformed heads, invalid WebSocket
	// handshakes) are answered by the loop and never reach OnRequest.
	OnRequest(r *Request, d *Decision)

	// OnOpen is called on the loop goroutine once 101 Switching Protocols
	// has been written. Frames sent from OnOpen follow the 101.
	OnOpen(c Conn)

	// OnMessage delivers a complete text or binary message (op is
	// ws.OpText or ws.OpBinary). It is called on the loop goroutine;
	// payload is valid only during the call (it points into the read
	// buffer, or into the loop's inflate buffer for a message that
	// arrived compressed, Decision.Deflate): copy it to keep it. Text
	// payloads are valid UTF-8.
	OnMessage(c Conn, op ws.OpCode, payload []byte)

	// OnClose is called on the loop goroutine once, when the TCP connection
	// of a connection that was opened (OnOpen) has ended. code is the code
	// of the close handshake: the peer's when the peer started it (1005
	// when its close frame had none), the server's when the server did,
	// 1006 when the connection ended without a close frame. err is nil for
	// a completed close handshake, else why the connection ended (a
	// *frame.ProtocolError, ErrIdleTimeout, ErrSlowConsumer, a socket
	// error, ...). Every method of c already returns ErrClosed. When the
	// connection ended inside another Handler call (a Send whose write
	// failed), OnClose runs once that call has returned.
	OnClose(c Conn, code ws.StatusCode, err error)
}

// ControlHandler may be implemented by a Handler to see the pings and pongs
// that the peers of open connections send: for presence, or for latency
// (the pong that answers a Conn.Send of a ping). New checks for it once; a
// Handler without it costs nothing per control frame. Both methods run on
// the loop goroutine, as Handler's do, after the loop did its own work: a
// ping is already answered (its pong is in the write path), and a pong, as
// any input, already counted as a sign of life for the ping/pong and idle
// deadlines. They are not called once the close handshake began. payload
// (at most 125 bytes, unmasked) is valid only during the call.
type ControlHandler interface {
	OnPing(c Conn, payload []byte)
	OnPong(c Conn, payload []byte)
}

// Request is the complete request head handed to Handler.OnRequest. It is
// owned by the loop and valid only during the call.
type Request struct {
	// Head is the parsed head: method, path, query, header fields, and the
	// WebSocket negotiation helpers (SelectSubprotocol, Extensions). Its
	// views point into the read buffer.
	Head *parser.Request
	// Conn is the connection the request arrived on.
	Conn Conn
	// WebSocket reports a valid WebSocket opening handshake (RFC 6455
	// §4.2.1, checked by the parser): d.Upgrade may accept it. Otherwise the
	// request is plain HTTP; Head.WantsUpgrade tells whether it asked for
	// another protocol, which d.Switch may accept (Head.SelectUpgrade).
	WebSocket bool
	// WebSocketErr is the parser's rejection of a request that offers
	// "websocket" in Upgrade with an invalid handshake, given to a Handler
	// that implements StreamHandler, which may still switch to another
	// protocol of the list; to any other Handler the loop answers it
	// itself. nil otherwise.
	WebSocketErr *parser.Error
}

// Action is what a Decision does with a request.
type Action uint8

// Actions of a Decision.
const (
	// ActReject answers Decision.Status (404 when zero) with a plain-text
	// body and closes the connection once the response is written.
	ActReject Action = iota
	// ActRespond answers a plain HTTP response; the connection stays open
	// for the next request when the request allows keep-alive and has no
	// body.
	ActRespond
	// ActUpgrade answers 101 Switching Protocols: the connection becomes a
	// WebSocket connection.
	ActUpgrade
	// ActRequireUpgrade answers 426 Upgrade Required with
	// "Upgrade: websocket", for a route that only speaks WebSocket.
	ActRequireUpgrade
	// ActDefer answers nothing yet: the decision comes later, from any
	// goroutine, through Conn.Resolve. Only for a request that asks for an
	// upgrade (Head.WantsUpgrade); a plain request answered ActDefer gets
	// 500.
	ActDefer
	// ActSwitch answers 101 Switching Protocols naming Decision.Protocol
	// in Upgrade: the connection becomes a byte stream of that protocol,
	// handled by the Handler's StreamHandler methods (or handed over, see
	// Decision.Handoff). Only for a request that asks for an upgrade; for
	// another it acts as ActRequireUpgrade.
	ActSwitch
)

// Decision is Handler.OnRequest's answer. The loop owns it and resets it
// before each call; OnRequest fills it, on the loop goroutine, with its
// methods or by setting the fields. It must not be kept after OnRequest.
type Decision struct {
	Action Action
	// Status is the status code of ActRespond and ActReject.
	Status int
	// Reason is the body of ActReject: a plain sentence for the client;
	// empty, the status's reason phrase.
	Reason string
	// Header holds extra header lines, each ending in CRLF, for ActRespond
	// and ActReject.
	Header string
	// ContentType and Body make the body of ActRespond.
	ContentType string
	Body        []byte
	// Subprotocol and Extensions are the Sec-WebSocket-Protocol and
	// Sec-WebSocket-Extensions values of ActUpgrade; empty leaves the field
	// out. Extensions that set RSV bits are not supported by the loop,
	// except permessage-deflate, which is agreed with Deflate rather than
	// named here: the loop then writes it into the 101 itself, ahead of
	// Extensions.
	Subprotocol []byte
	Extensions  []byte
	// MaxMessage is the connection's message size limit for ActUpgrade;
	// zero means Options.MaxMessage. With permessage-deflate it bounds a
	// message once inflated.
	MaxMessage int64
	// Compression is the permessage-deflate agreement of ActUpgrade, set
	// with Deflate; zero for none.
	Compression Compression
	// Protocol is the Upgrade token ("name" or "name/version") of
	// ActSwitch: one element of the client's Upgrade list, as
	// Head.SelectUpgrade chose it.
	Protocol []byte
	// Protocols is the Upgrade list of ActRequireUpgrade's 426, in the
	// server's order of preference; empty names WebSocket.
	Protocols []parser.Protocol
	// Handoff, with ActUpgrade or ActSwitch, gives the connection's socket
	// to the Handler once the 101 is written, instead of keeping it on the
	// loop: see HandoffHandler. A connection of the TLS listener cannot be
	// handed over (the loop holds its TLS state) and is answered 500, as
	// is a handoff with permessage-deflate or by a Handler that does not
	// implement HandoffHandler.
	Handoff bool
}

// Upgrade accepts a WebSocket handshake with the given subprotocol and
// extensions (nil for none) and message size limit (0 for the default).
// For a request that is not a WebSocket handshake it acts as RequireUpgrade.
func (d *Decision) Upgrade(subprotocol, extensions []byte, maxMessage int64) {
	d.Action = ActUpgrade
	d.Subprotocol, d.Extensions, d.MaxMessage = subprotocol, extensions, maxMessage
}

// Deflate agrees to permessage-deflate (RFC 7692) for an ActUpgrade, with
// the parameters p that deflate.Negotiate chose from the request's offers
// (Request.Head.Extensions), outgoing messages compressed at level (see
// Compression.Level) when their payload is at least threshold bytes. Call
// it with Upgrade, before or after.
//
// The loop then names exactly p in the 101's Sec-WebSocket-Extensions
// (deflate.AppendResponse), lets the client set RSV1 on the first frame of
// a data message, inflates such messages before OnMessage, never beyond
// the connection's message size limit (1009 beyond it, 1007 for data that
// does not inflate or text that is not UTF-8 once inflated), and
// compresses what Write and Send send. Every message is inflated and
// compressed from an empty window, so p must include
// client_no_context_takeover, and level must be within
// deflate.MinLevel..deflate.MaxLevel: otherwise the handshake is answered
// 500. No codec is kept per connection: a loop shares one among its
// connections, and the connection stores 8 bytes of agreement.
func (d *Decision) Deflate(p deflate.Params, level, threshold int) {
	d.Compression = Compression{Enabled: true, Params: p, Level: level, Threshold: threshold}
}

// Respond answers a plain HTTP response. header holds extra lines ending in
// CRLF; body must stay valid until OnRequest returns.
func (d *Decision) Respond(status int, header, contentType string, body []byte) {
	d.Action = ActRespond
	d.Status, d.Header, d.ContentType, d.Body = status, header, contentType, body
}

// Reject answers status with reason as a plain-text body and closes the
// connection.
func (d *Decision) Reject(status int, reason string) {
	d.Action = ActReject
	d.Status, d.Reason = status, reason
}

// RejectError answers a parser rejection (for instance the error of
// Request.Head.SelectSubprotocol) with its status, body and header lines.
func (d *Decision) RejectError(e *parser.Error) {
	d.Action = ActReject
	d.Status, d.Reason, d.Header = e.Status, e.Body, e.Header
}

// RequireUpgrade answers 426 Upgrade Required for a route that only speaks
// WebSocket.
func (d *Decision) RequireUpgrade() { d.Action = ActRequireUpgrade }

// RequireUpgradeOf answers 426 Upgrade Required naming protocols, in the
// server's order of preference, for a route that only speaks them.
// protocols must stay valid until OnRequest returns.
func (d *Decision) RequireUpgradeOf(protocols []parser.Protocol) {
	d.Action = ActRequireUpgrade
	d.Protocols = protocols
}

// Switch accepts an upgrade to a protocol other than WebSocket: protocol is
// the element of the client's Upgrade list to name in the 101 (see
// Decision.Protocol); it must stay valid until OnRequest returns.
func (d *Decision) Switch(protocol []byte) {
	d.Action = ActSwitch
	d.Protocol = protocol
}

// Defer puts the decision off, for a WebSocket handshake that waits on
// something slow (an authorisation service): the loop answers nothing, goes
// on with its other connections, and completes the handshake when
// Conn.Resolve is called, from any goroutine. Meanwhile the connection's
// bytes that follow the request head are kept, unparsed, and delivered as
// WebSocket frames after the 101; the handshake timeout still applies (408),
// and a client that sends more than MaxWaitInput bytes before the answer is
// answered 400. OnRequest must copy what it needs of the request before it
// returns: the head is not kept.
func (d *Decision) Defer() { d.Action = ActDefer }

// StreamHandler may be implemented by a Handler to switch connections to
// protocols other than WebSocket (Decision.Switch): after the 101 such a
// connection is a byte stream. Its methods run on the loop goroutine, as
// Handler's do, never concurrently for one connection. The stream has the
// WebSocket connection's limits: Options.MaxOutbound bounds what is queued
// for it (a write beyond ends it, as a slow consumer) and
// Options.IdleTimeout its silence; it has no pings. gnet reads every
// socket it polls, so a stream cannot stop its peer from sending: what
// OnData is given must be consumed or dropped by the handler. gnet also
// ends a connection when its peer's input ends (read returns 0), so a
// stream has no half-close: the peer's FIN ends it.
type StreamHandler interface {
	// OnStreamOpen is called once the 101 is written. Bytes written from
	// it follow the 101.
	OnStreamOpen(c Conn)
	// OnData delivers the bytes that arrived, in order, beginning with
	// those that followed the request head in the same packet. p is valid
	// only during the call.
	OnData(c Conn, p []byte)
	// OnStreamClose is called once when the connection has ended. err is
	// nil when the peer ended it (FIN) or the server did (Conn.Close),
	// else why (a socket error, ErrIdleTimeout, ErrSlowConsumer,
	// ErrShutdown).
	OnStreamClose(c Conn, err error)
}

// HandoffHandler may be implemented by a Handler to take connections over
// from the loop (Decision.Handoff). OnHandoff is called on the loop
// goroutine once the 101 is written out: fd is a duplicate of the
// connection's socket (non-blocking, close-on-exec), now the handler's to
// read, write and close; rest holds the bytes that arrived behind the
// request head, valid only during the call. After it returns the loop
// closes its own descriptor, which only drops gnet's reference to the
// socket (gnet closes a connection with close(2), never shutdown(2)), and
// forgets the connection: no OnOpen, OnStreamOpen or OnClose follows. The
// Conn's ID, RemoteAddr and ClientAddr stay readable: the loop never
// reuses the state of a connection it handed over.
type HandoffHandler interface {
	OnHandoff(c Conn, fd int, rest []byte)
}

// MaxWaitInput bounds the bytes a client may send after a deferred request
// head (Decision.Defer) before the decision comes.
const MaxWaitInput = 64 << 10

func (d *Decision) reset() { *d = Decision{} }
