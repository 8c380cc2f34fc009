// Package bus joins upgate gateway nodes into a fleet over NATS: one node
// holds tens of thousands of connections, a fleet of nodes behind an L4
// balancer holds millions, and backends reach every connection through
// NATS subjects, with no cluster protocol of upgate's own.
//
// A [Bus] is one node's connection to NATS: to servers of an existing
// cluster, or to a NATS server embedded in the process (package natsembed),
// alone or clustered with the other nodes' embedded servers by routes. It
// reconnects with exponential back-off when NATS goes away, resubscribes
// what it had, keeps serving the node's local connections meanwhile, and
// counts every message it could not forward or deliver by reason ([Stats]).
//
// # Wire contract
//
// Every subject starts with a configurable prefix (default "upgate"). A
// node has an id, unique in the fleet; a connection's fleet-wide id is
// "<node>.<n>", n being the node's connection number.
//
//	<prefix>.in.<route>          published by the gateway: a client's message on a
//	                             bridge route; reply subject <prefix>.conn.<id>
//	<prefix>.conn.<node>.<n>     subscribed by node <node>: delivers the body to
//	                             connection <node>.<n>; with Upgate-Close: <code>
//	                             closes it (body = reason); a request gets
//	                             {"ok":true} or {"ok":false,"error":"<reason>"}
//	<prefix>.topic.<name>        fan-out to every subscriber of topic <name> on every
//	                             node; a node subscribes only while it has subscribers
//	<prefix>.event.open          published by the gateway when a connection opens
//	<prefix>.event.close         ... and when it ends (Upgate-Close-Code)
//	<prefix>.auth                requested by the gateway before completing a
//	                             handshake on a route that asks for it (AuthRequest,
//	                             answered with an AuthReply)
//
// Headers (see the Header constants): Upgate-Conn, Upgate-Node,
// Upgate-Route, Upgate-Remote, Upgate-Subprotocol, Upgate-Topic and
// Upgate-User describe the connection on bridged messages and events;
// Upgate-Opcode: binary marks a binary message (text otherwise, which must
// be valid UTF-8) in either direction; Upgate-Close on a connection subject
// closes the connection with that code.
//
// Topic names are used in subjects as they are, except for bytes a subject
// cannot carry (see [EscapeTopic]): "news" is <prefix>.topic.news,
// "room 1" is <prefix>.topic.room%201.
//
// # Goroutines
//
// The methods the event loops call (Forward, Publish, Event, Send, Watch,
// Unwatch, Authorize) never block: they hand the message to the bus's
// publisher goroutine through a bounded queue, and a full queue drops the
// message and counts it. Inbound messages are handed to [Local] on the
// bus's goroutines: one for connection messages, one for topic messages
// (so each arrives in the order sent).
package bus
