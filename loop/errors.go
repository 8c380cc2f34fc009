//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import "errors"

// Errors returned by Conn methods.
var (
	// ErrClosed is returned by Conn methods once the connection has started
	// its close handshake or is closed.
	ErrClosed = errors.New("loop: connection closed")
	// ErrNotOpen is returned by Send, SendFrame and Close on a connection
	// whose WebSocket handshake has not completed.
	ErrNotOpen = errors.New("loop: connection not open")
	// ErrSlowConsumer is returned when the connection's outbound queue is
	// over Options.MaxOutbound; the connection is being closed with 1008.
	ErrSlowConsumer = errors.New("loop: outbound queue full: slow consumer")
	// ErrOpCode is returned by Send for an opcode other than text, binary,
	// ping and pong.
	ErrOpCode = errors.New("loop: invalid opcode")
	// ErrControlTooLong is returned by Send for a ping or pong payload over
	// 125 bytes.
	ErrControlTooLong = errors.New("loop: control frame payload over 125 bytes")
	// ErrCloseCode is returned by Close for a code that may not be sent.
	ErrCloseCode = errors.New("loop: invalid close code")
	// ErrBadFrame is returned by SendFrame for bytes too short to be a frame.
	ErrBadFrame = errors.New("loop: not an encoded frame")
	// ErrTooLarge is returned by Send and SendFrame called off the loop for
	// a frame over 1 GiB.
	ErrTooLarge = errors.New("loop: frame too large to queue")
)

// Errors passed to Handler.OnClose to tell why a connection ended. A close
// handshake that completed normally reports nil; a protocol violation by the
// peer reports the codec's *frame.ProtocolError.
var (
	// ErrAbnormalClosure: the TCP connection ended without a close frame.
	ErrAbnormalClosure = errors.New("loop: connection closed without a close frame")
	// ErrIdleTimeout: nothing was received for Options.IdleTimeout.
	ErrIdleTimeout = errors.New("loop: idle timeout")
	// ErrPongTimeout: nothing was received for Options.PongTimeout after a ping.
	ErrPongTimeout = errors.New("loop: no answer to ping")
	// ErrCloseTimeout: the peer did not complete the close handshake within
	// Options.CloseTimeout.
	ErrCloseTimeout = errors.New("loop: close handshake timed out")
	// ErrShutdown: the server is draining or has stopped.
	ErrShutdown = errors.New("loop: server shutting down")
)

// Reasons a connection ends, stored in a byte of the Conn.
const (
	whyNone uint8 = iota
	whySlow
	whyIdle
	whyPong
	whyCloseTimeout
	whyShutdown
)

var closeErrs = [...]error{whyNone: nil, whySlow: ErrSlowConsumer, whyIdle: ErrIdleTimeout,
	whyPong: ErrPongTimeout, whyCloseTimeout: ErrCloseTimeout, whyShutdown: ErrShutdown}

// Errors returned by Server methods.
var (
	// ErrServerStarted is returned by Start on a server already started.
	ErrServerStarted = errors.New("loop: server already started")
	// ErrServerNotStarted is returned by Shutdown on a server never started.
	ErrServerNotStarted = errors.New("loop: server not started")
	// ErrServerStopped is returned by Execute once the server is stopping.
	ErrServerStopped = errors.New("loop: server stopped")
	// ErrNoLoop is returned by Execute for a loop index out of
	// [0, Server.Loops()).
	ErrNoLoop = errors.New("loop: no such event loop")
)
