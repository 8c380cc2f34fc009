// Package gateway is upgate's product layer: an embeddable WebSocket gateway
// on the event-loop server of package loop.
//
// A [Gateway] is built from a [Config] by [New] and runs its listeners:
//
//   - the public listener (an event-loop server, no goroutine per
//     connection): WebSocket routes, plain-HTTP answers (/healthz, /readyz,
//     a short description or 426 Upgrade Required on a route, 404 elsewhere);
//   - with Config.TLS, the TLS listener on the same event loops, serving
//     the same over TLS (wss://, https://), TLS terminated on the loops,
//     the certificates chosen by SNI and reloaded when their files change
//     or on [Gateway.ReloadTLS]; Config.Listen "off" leaves it alone;
//   - the admin listener (net/http): /metrics in the Prometheus exposition
//     format (Gateway.WriteMetrics writes the same text anywhere), and a
//     small JSON API to publish to topics and to send to or disconnect
//     connections by id. A program with an HTTP server of its own mounts
//     the same API there ([Gateway.AdminHandler], under any prefix with
//     http.StripPrefix) and turns the listener off (Config.Admin "off").
//
// # Routes and behaviours
//
// A [Route] maps a path to a behaviour with its own origin allowlist (403),
// subprotocols (400 when required and none offered; the client's first
// listed one that the route speaks is chosen), message size limit (close
// 1009) and plain-HTTP answer (200 or 426). Behaviours:
//
//   - [Echo] writes every message back, on the event loop, with no
//     allocation.
//   - [PubSub] subscribes the connection to a topic, named by the {topic}
//     path segment ("/ws/{topic}") or the "topic" query parameter. When the
//     route allows it, a client's messages are published to its topic
//     (itself included); otherwise a message closes it with 1008. A publish
//     encodes its frame once and shares the bytes with every subscriber,
//     handing each other event loop one task that writes them to its
//     subscribers: O(loops) allocations, whatever the number of subscribers.
//   - [Custom] hands the connection to the route's own [Handler]
//     (Route.Handler), or to the default one given by [WithHandler].
//   - [Bridge] publishes the client's messages to NATS for backends (see
//     below).
//   - [TCP] accepts "Upgrade: tcp" and splices the connection to a new
//     connection to Route.Upstream; [Websockify] carries a WebSocket's
//     binary messages to and from it. The upstream is dialled before the
//     101 (502, 504), then the event loop hands the socket to the tunnel
//     reactor (package tunnel): splice(2), a slow side not read, half-close
//     passed on. Tunnels are served on the plain listener.
//   - [Stream] speaks only the protocols Route.Protocols names, which a Go
//     program registers with [WithProtocol]; any route may list them
//     beside WebSocket. The client's most preferred protocol the route
//     accepts is switched to (RFC 9110 §7.8); 426 names them all.
//
// Before a route's rules, the connection limits apply: Limits.MaxConnections
// (503 with Retry-After) and Limits.ConnectRate, a token bucket (429 with
// Retry-After). With Config.ProxyProtocol the client address comes from the
// load balancer's PROXY protocol header; X-Forwarded-For is believed only
// from Config.TrustedProxies, judged on that address.
//
// # Fleet
//
// With [Config].NATS the gateway joins a fleet over NATS (package bus holds
// the connection and the wire contract; package natsembed the NATS server
// the gateway may run inside the process, see [WithEmbeddedNATS]): a publish
// reaches the topic's subscribers on every node, a connection is reached by
// its fleet id ("<node>.<id>", [Conn.FleetID]) from any node or backend,
// lifecycle events are published, and a route with Auth completes its
// handshakes only on the answer of an authorisation service, without
// holding up the event loop. The gateway keeps serving its own connections
// while NATS is away; /readyz then answers 503.
//
// # Goroutines
//
// [Handler] callbacks, and those of the optional [Authorizer], [PingHandler]
// and [PongHandler], run on the event loop goroutine that owns the
// connection: they must not block. [Conn] methods but Write, and the
// Gateway's Send, Disconnect, Publish, Conn, Connections and Subscribers,
// are safe from any goroutine, including Handler callbacks: a send is
// queued to the connection's loop. [Conn.Write] belongs to that loop (a
// Handler callback of any of its connections) and writes at once. Start, Shutdown, Addr, AdminAddr and Done may be
// called from any goroutine, Shutdown not from a Handler callback.
//
// # Memory
//
// A payload handed to Handler.OnMessage points into the event loop's read
// buffer and is valid only during the call. The [Request] handed to
// Handler.OnOpen is a copy, valid for as long as it is kept. Payloads given
// to Send and Publish are copied (Send) or encoded (Publish) before they
// return, so the caller may reuse them at once.
package gateway
