// Package tunnel splices two TCP sockets after an HTTP upgrade: side A is
// the client, side B the upstream service. It serves two kinds of tunnel:
//
//   - Raw: a client asked for `Upgrade: tcp` (RFC 9110 §7.8) and got
//     101 Switching Protocols; from then on A and B exchange bytes
//     unchanged. Each direction is moved with splice(2) through a kernel
//     pipe, without copying through user space.
//   - WebSocket: A is a WebSocket client whose handshake is done (websockify,
//     as noVNC or a browser terminal use it). The payload of A's binary
//     messages is streamed to B as it arrives, whole messages are never
//     waited for; each read from B goes to A as one binary frame.
//
// # Why beside gnet
//
// The gateway's connections run on gnet v2.9.7, whose event loop cannot
// carry a tunnel. Its eventloop read calls OnTraffic and then appends
// whatever the handler left unread to the connection's inbound buffer, and
// gnet offers no way to stop reading a socket: a slow upstream would let
// that buffer grow without bound. And its read
// closes the connection as soon as read(2) returns 0 (io.EOF), so a client
// that shuts down its sending side can no longer receive the reply: no
// half-close.
//
// This package runs its own level-triggered epoll goroutines (Options.
// Reactors, none per tunnel) that stop watching a socket for input while
// the other side cannot take more (backpressure) and treat each direction's
// end separately (half-close: EOF from A becomes shutdown(B, SHUT_WR) once
// everything read from A was written, and the other direction goes on).
// Options.IdleTimeout and Options.DrainTimeout are checked by the reactor
// itself a few times per timeout, with no timer per tunnel.
//
// # Handing over a connection
//
// After writing the 101, the gateway takes a duplicate of the client's
// descriptor (gnet.Conn.Dup), lets gnet close the connection, dials or
// takes the upstream socket and calls Reactor.Splice. This relies on gnet
// closing a connection's descriptor with close(2) only (after removing it
// from its epoll set), never shutdown(2): the socket stays open through the
// duplicate. Bytes gnet already read behind the request head are passed as
// Splice's prefix.
//
// Splice takes ownership of both descriptors when it succeeds: the tunnel
// makes them non-blocking and closes them when it ends, then calls onEnd,
// once, on the reactor's goroutine. When Splice fails the caller still owns
// them.
//
// # Memory
//
// A Raw tunnel holds a pipe per direction only while bytes are in flight;
// drained pipes go back to a pool of at most Options.MaxPipes, so an idle
// tunnel holds just its two sockets. A WebSocket tunnel likewise holds a
// pooled buffer per direction only while bytes are in flight. A Raw tunnel
// holds at most about 2 × Options.PipeSize bytes (kernel pipe memory), a
// WebSocket one 2 × Options.BufferSize (process memory), plus a few
// hundred bytes of state. Tunnel.Buffered reports the bytes held.
//
// # WebSocket mode and RFC 6455
//
// Frames from A must be masked, without RSV bits, with control frames
// unfragmented and at most 125 bytes; text messages are refused with
// close 1003 (the stream is binary) and other violations with 1002 (1007
// for a close reason that is not UTF-8). A ping is answered by a pong with
// the same payload, ahead of further data. A's close is answered with the
// same code (1000 if it carried none), after the data already read from B;
// B is then shut down for writing and the tunnel ends once B has ended too.
// B's end becomes close 1000 after the last data, and the tunnel ends on A's
// reply. A failing B gets A a close 1011; Tunnel.Close, Reactor.Shutdown and
// IdleTimeout send 1001.
package tunnel
