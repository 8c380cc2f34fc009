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
// WebSocket is one of the protocols a connection can switch to. A Handler
// that implements [StreamHandler] may switch a request to another protocol
// of its Upgrade list ([Decision.Switch], RFC 9110 §7.8): after the 101
// the connection is a byte stream, open in the same state machine (the
// same write path, outbound bound, inbox order, idle timer and drain),
// whose input goes to [StreamHandler.OnData] instead of the frame decoder
// and whose close is the linger. A Handler that implements
// [HandoffHandler] may instead take a connection over once its 101 is out
// ([Decision.Handoff]): it gets a duplicate of the socket and the bytes
// behind the head, and the loop lets gnet close its own descriptor (gnet
// closes with close(2) only, so the duplicate keeps the socket open). The
// gateway's tunnels use it, since gnet cannot stop reading a socket
// (backpressure) nor keep one whose peer sent FIN (half-close).
//
// In the open phase the loop decodes frames with package frame, answers pings,
// delivers messages to [Handler.OnMessage] (a single-frame message is a view
// into the read buffer, unmasked in place: no copy), shows pings and pongs
// to a Handler that implements [ControlHandler], and runs the close
// handshake. Frames written on the loop during one read callback are
// coalesced into one write. [Server.Shutdown] drains: it stops accepting,
// sends close 1001 to every WebSocket connection and waits for the close
// handshakes up to [Options.DrainTimeout].
//
// # Compression
//
// A Handler that accepts permessage-deflate (RFC 7692) for a connection
// chooses the parameters with deflate.Negotiate and gives them to
// [Decision.Deflate] with a compression level and a size threshold; the
// loop names exactly those parameters in the 101. The frame decoder then
// allows RSV1 on the first frame of a data message only (1002 on a
// continuation or control frame, RFC 7692 §6.1, and on any frame of a
// connection that did not negotiate, RFC 6455 §5.2). A message whose first
// frame had RSV1 is inflated once whole, with the loop's Decompressor, into
// a per-loop buffer and never beyond the connection's message size limit
// (1009 beyond it, without inflating the rest; 1007 for data that does not
// inflate); text is checked as UTF-8 after inflating rather than while its
// compressed frames arrive. [Conn.Write] and [Conn.Send] compress text and
// binary messages of the threshold or more and set RSV1; smaller ones go
// out uncompressed. Pre-encoded frames ([Conn.WriteFrame],
// [Conn.SendFrame]) are sent as they are. Every message is compressed and
// inflated from an empty window (no context takeover), so no codec lives
// in a connection: a loop shares one Decompressor and a Compressor per
// level and window, Send borrows Compressors from a server-wide pool, and
// the agreement costs a connection 8 bytes of its Conn. The TLS path feeds
// the same decoder. [Conn.Compression] and [Conn.Compresses] tell the
// agreement to any goroutine the connection was handed to from OnOpen on,
// so that a broadcaster can compress a message once for every connection
// that agreed to the same level and window and send it with SendFrame.
//
// # TLS
//
// With [Options.TLS] the listener speaks TLS (wss://); with
// [Options.TLSAddr] a second listener does, beside the plain one, on the
// same loops. crypto/tls runs each handshake on a goroutine of its own,
// started once the client's first record (its ClientHello) is whole, so
// that a silent or slow client costs what a plain one does; at most
// [Options.MaxTLSHandshakes] run at once (a connection whose ClientHello
// comes beyond is closed, Stats.TLSRefused), over an in-memory transport that the loop
// feeds with the ciphertext it reads and that hands the goroutine's records
// back to the loop to write. The handshake timeout covers the TLS handshake
// and the request head; a connection still in its TLS handshake when it
// fires, or when the server drains, is closed without a word, which ends
// its goroutine. A failed handshake is counted by reason (TLSFailure).
//
// After the handshake a TLS 1.3 connection goes over to the loop's own
// record layer, package tlsrec: the loop decrypts each record straight out
// of gnet's read buffer into the connection's plaintext buffer (pooled,
// released when empty), which the head and frame decoding read in place of
// gnet's, and seals everything it writes straight into gnet's write path.
// No goroutine and no *tls.Conn stay. Why, and how the hand-over gets the
// traffic secrets and sequence numbers from crypto/tls through documented
// means only, is told in tls13.go. Per idle upgraded connection TLS then
// adds some 350 bytes of heap (TestTLSConnectionCost: about 850 bytes with
// the plain connection's own, against 4.9 KB with an X25519 client and
// 8.2 KB with the X25519MLKEM768 share browsers send when the *tls.Conn
// stays), plus about 2.5 KB of AES-GCM state while records flow, dropped
// after [Options.TLSCipherIdle] without one. TLS 1.2 connections, and all
// with [Options.TLSStdRecords], keep the *tls.Conn, which the loop drives
// without blocking: its transport's Read returns an error that is both
// Timeout and Temporary when empty, which crypto/tls does not keep, and
// never returns bytes past the end of a record.
//
// Kernel TLS (kTLS) would fit the same seam: the hand-over has the suite,
// keys, IVs and sequence numbers that setsockopt(TLS_TX, TLS_RX) takes, and
// the record layer's three calls (decrypt a read, seal a write, send an
// alert) are the only places that would change. It is not built: the
// kernels this is tested on offer no tls ULP.
//
// # Systems
//
// The package builds on the systems gnet has a poller for: Linux (epoll),
// macOS, FreeBSD, NetBSD, OpenBSD and DragonFly BSD (kqueue). On any other
// GOOS (Windows, Plan 9, js and wasip1, Solaris, AIX) a build fails with a
// single error naming them (unsupported.go). Some features are Linux's
// alone and off elsewhere: the file descriptor guard below (it counts
// descriptors in /proc/self/fd and pauses the listener with a socket
// filter), [Options.DeferAccept] (TCP_DEFER_ACCEPT; Start fails when it is
// set), and the look into the receive queue (SIOCINQ) that puts a due
// deadline off while input waits unread in the socket.
//
// # Listeners
//
// A server listens on [Options.Addr]. With [Options.TLS] alone that
// listener speaks TLS. With [Options.TLSAddr] too, the server has two
// listeners on the same event loops (gnet's multi-address engine): Addr
// plain (ws://, health checks) and TLSAddr TLS (wss://); [ListenOff] as
// Addr leaves the TLS listener alone. Each connection is served as the
// listener that accepted it says, which the loop learns at accept from the
// local address of the accepted socket (listeners.go). [Server.Addr] and
// [Server.TLSAddr] tell the addresses bound; [Snapshot].TLSConnsOpen and
// TLSConnsTotal tell the TLS listener's part of the connections. With
// [Options.ProxyProtocol] every listener expects the balancer's header: on
// the TLS listener it comes before the ClientHello, and the handshake
// starts behind it. A failed handshake is counted by reason
// ([TLSFailure], [Snapshot].TLSFailuresBy) and ends with the alert
// crypto/tls writes, then a close; plaintext HTTP on the TLS listener is
// answered 400, as net/http answers it.
//
// # Goroutines
//
// Every [Handler] method runs on the event loop goroutine of its connection
// and must not block. Which goroutine may call a [Conn] method is part of
// its name, as gnet's Write and AsyncWrite: [Conn.Write], [Conn.WriteFrame]
// and [Conn.WriteClose] belong to the connection's loop (Handler methods of
// any of its connections, functions run by [Server.Execute] on it) and
// write at once; [Conn.Send], [Conn.SendFrame] and [Conn.Close] may be
// called from any goroutine and hand the frame to the loop's inbox, one
// FIFO queue per loop that the loop drains once per turn of its event
// loop, after reading its sockets (see inbox.go). [Server.Execute] runs a
// function on a loop through the same inbox, in order with those writes,
// so that one hand-off can reach all of a loop's connections (a
// broadcast). The package never asks which goroutine runs it: the Go
// runtime offers no documented way to, and none is needed. gnet's ticker
// goroutine only schedules timer work onto the loops; each loop advances
// its own timing wheel (handshake, idle, ping/pong, close and linger
// deadlines).
//
// Start connects to its own listener until gnet has handed it a
// connection on every loop (gnet does not list its loops; see reach.go),
// so that Execute reaches a loop before any client did.
//
// # Memory
//
// Messages on the loop allocate nothing (TestAllocsPerMessage); a Send
// allocates nothing in steady state (TestAllocsPerAsyncSend). A
// connection's cycle through the loop (open, 101, close) allocates nothing
// of this package either (TestAllocsPerHandshake, TestConnectionCost): a
// loop keeps the 144-byte state of its closed plain connections, up to
// [Options.ConnPool], and gives it to the next ones. Handlers hold [Conn]
// handles, 16-byte values that carry their connection's id: a handle kept
// past its connection's end answers ErrClosed and zero values once the
// state serves another, and a compare-and-swap on the state's generation
// keeps a stale handle from closing a later connection (handle.go,
// pool.go; TestConnReuseRace). On a real engine gnet allocates its
// connection and addresses: 9 objects, some 620 bytes, per accept,
// handshake and close. An idle upgraded connection holds its 144-byte
// state and gnet's connection, about 510 bytes of heap (TestConnectionCost
// measures both). The parser's field table, the frame decoder and any partial input
// live in per-loop free lists and are attached only while a head or a frame
// is incomplete. Slices passed to Handler methods are valid only during the
// call. Outbound bytes are bounded per connection by [Options.MaxOutbound]:
// a peer that does not read is closed with 1008.
//
// # File descriptors
//
// gnet stops its whole engine when accept(2) fails with anything but EAGAIN,
// EINTR, ECONNRESET or ECONNABORTED: a process that reaches RLIMIT_NOFILE
// (EMFILE) would stop serving every connection it has. The server therefore
// keeps its descriptors under the limit itself, with gnet's documented API
// only. At Start it reads the limit (after Go raised the soft limit to the
// hard one) and counts the descriptors in use; it then holds at most the
// limit, less [Options.FDReserve], less those, and answers every connection
// beyond with 503 and Retry-After from OnOpen, closing it at once, before
// anything is read ([Stats].FDRefused; a line a second at most goes to
// [Options.Logger]). The reserve (by default 1/32 of the limit, at least 64
// and at most 4096: 625 under 20,000 descriptors, which leaves room for
// about 19,300 connections; 4096 under 1,048,576) covers the descriptors the
// process opens after Start (admin connections, NATS, files), and the
// connections accepted but not yet refused: gnet's acceptor accepts until
// EAGAIN and hands each connection to a loop, where OnOpen runs later, so a
// burst is bounded by the listen backlog (plus what arrives while it is
// drained). While the open connections are within one full backlog
// (net.core.somaxconn) of the most, the server lowers the backlog, with
// listen(2) on the listener's descriptor from Engine.Dup, to a quarter of
// the reserve, and raises it back a quarter of a backlog below: one
// syscall per crossing. [Server.FDLimit] tells the numbers. The count of
// descriptors in use at Start adds an estimate of the engine's own pollers
// (two descriptors each on Linux, read from gnet's source): an error of a
// few falls in the reserve.
//
// A backlog bounds the accept queue, not the rate at which gnet's acceptor,
// which runs apart from the loops and accepts until EAGAIN, takes
// connections from it: under a flood (or on a starved CPU) it can take them
// faster than the loops refuse them. So a quarter of the reserve before the
// most, the server pauses the listener, as HAProxy does at maxconn: a
// socket filter that drops every packet (SO_ATTACH_FILTER, socket(7)) on the
// listener's descriptor makes the kernel drop new SYNs, which clients
// retry, and the acceptor runs dry once the queued connections are taken.
// A client whose SYN came in just before the pause loses its last ACK and
// its first bytes the same way: it sees a connection that answers only once
// the listener resumes, as when an accept queue overflows.
// The filter is detached (SO_DETACH_FILTER) when open connections fall a
// further quarter of the reserve lower, checked at every open and every
// tick; [Snapshot].ListenerPauses counts the pauses. A server with two
// listeners tunes and pauses both together (each from Engine.DupListener),
// and closes a TLS connection beyond the most without the 503, which a TLS
// client could not read.
//
// With [Options.ReusePort] every loop has its own listener and Engine.Dup
// reaches only the first, so the backlogs are left alone and the reserve is
// the only margin. gnet (v2.9.7) accepts one connection per readiness event
// on such loops and runs OnOpen before the next accept, which bounds the
// connections in flight by the number of loops; that is what its source
// does, not a promise of its API.
//
// Handing connections to gnet from an acceptor of the server's own
// (accept on a net.Listener, then EventLoop.Enroll) would see EMFILE itself
// and could back off, but Enroll duplicates the descriptor on a worker
// goroutine and waits for the loop: measured at 20 to 30 µs more CPU per
// connection than gnet's acceptor (about 183 µs against 155 µs for dial,
// accept, open and close, client and server in one process), several times
// the cost of parsing a handshake, with three descriptors per connection
// while it is handed over. The guard costs an atomic add and two compares
// per connection.
//
// When the engine stops all the same (ENFILE, ENOBUFS, ENOMEM, or
// descriptors taken by another part of the process), gnet's Run returns
// nil; the server then closes Done and [Server.Err] (and Shutdown) return
// [ErrEngineStopped], naming the descriptors in use when it stopped, so
// that a process can exit and be restarted.
package loop
