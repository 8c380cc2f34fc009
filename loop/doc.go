// Package loop is upgate's event-loop engine: a gnet reactor that turns TCP
// connections into WebSocket connections without a goroutine per connection.
//
// A [Server] owns a gnet engine with a few event loops. Each connection lives
// on one loop and goes through a small state machine:
//
//	head ─101─▶ open ─close frame─▶ closing ─peer close─▶ linger ─EOF─▶ closed
//	  │                                │                     ▲
//	  └─ HTTP response (keep-alive) ◀──┘ error response ─────┘
//
// With [Options.ProxyProtocol] a connection first reads the PROXY protocol
// header of its load balancer, then continues with the head in the same
// callback. In the head phase the loop feeds the bytes it has to the resumable
// [parser.Request] (taken from a per-loop free list and given back after the
// handshake) and asks the [Handler] what to do with a complete head: upgrade,
// answer plain HTTP, or reject. On upgrade it writes 101 Switching Protocols
// with one write and decodes the bytes that followed the head as WebSocket
// frames in the same callback: a client may send its handshake and first
// frames in one segment. A Handler that must ask something slow before it
// answers a handshake (an authorisation service) puts the decision off
// ([Decision.Defer]): the connection waits, its early bytes kept unparsed,
// while the loop serves the others, and [Conn.Resolve], from any goroutine,
// later writes the 101 or the refusal on the loop. The handshake timeout
// still applies.
//
// In the open phase the loop decodes frames with package frame, answers pings,
// delivers messages to [Handler.OnMessage] (a single-frame message is a view
// into the read buffer, unmasked in place: no copy), and runs the close
// handshake. Frames written on the loop during one read callback are
// coalesced into one write. [Server.Shutdown] drains: it stops accepting,
// sends close 1001 to every WebSocket connection and waits for the close
// handshakes up to [Options.DrainTimeout].
//
// # Goroutines
//
// Every [Handler] method runs on the event loop goroutine of its connection
// and must not block. [Conn] methods are safe from any goroutine (but
// SetContext, which is the loop's): on the connection's own loop they write
// directly; from elsewhere they hand the bytes to the loop with gnet's
// AsyncWrite. [Server.Execute] runs a function on a loop, in order with
// those writes, so that one hand-off can reach all of a loop's
// connections (a broadcast). gnet's ticker goroutine only
// schedules timer work onto the loops; each loop advances its own timing
// wheel (handshake, idle, ping/pong, close and linger deadlines).
//
// # Memory
//
// Messages on the loop allocate nothing (TestAllocsPerMessage); a Send from
// another goroutine allocates nothing of this package, only gnet's task
// record (TestAllocsPerAsyncSend). A connection's cycle through the loop (open,
// 101, close) allocates one object of this package, its [Conn], which is
// never pooled because a handle may outlive its connection
// (TestAllocsPerHandshake); on a real engine gnet adds its connection and
// addresses: about 10 objects, some 800 bytes, per accept, handshake and
// close in all. An idle upgraded connection holds its 160-byte Conn and
// gnet's connection, about 510 bytes of heap (TestConnectionCost measures
// both). The parser's field table, the frame decoder and any partial input
// live in per-loop free lists and are attached only while a head or a frame
// is incomplete. Slices passed to Handler methods are valid only during the
// call. Outbound bytes are bounded per connection by [Options.MaxOutbound]:
// a peer that does not read is closed with 1008.
package loop
