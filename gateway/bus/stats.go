package bus

import "sync/atomic"

// Message kinds, the label of the bus message counters.
const (
	KindIn    = iota // a client's message on a bridge route, to <prefix>.in.<route>
	KindTopic        // a topic message, <prefix>.topic.<name>
	KindConn         // a message or disconnect for one connection, <prefix>.conn.<id>
	KindEvent        // a lifecycle event, <prefix>.event.open|close
	KindAuth         // an authorisation request or its reply
	NumKinds
)

// kindNames are the label values of the kinds.
var kindNames = [NumKinds]string{"in", "topic", "conn", "event", "auth"}

// KindName returns the label value of kind k ("in", "topic", "conn",
// "event", "auth"), or "" when k is no kind.
func KindName(k int) string { return name(kindNames[:], k) }

// Reasons a message could not be forwarded or delivered, the label of
// the undeliverable counter. Nothing is dropped without being counted
// under one of them.
const (
	// ReasonQueueFull: the queue from the event loops to the bus was full
	// (the bus is slower than the clients).
	ReasonQueueFull = iota
	// ReasonBusDown: the bus was unreachable for longer than the reconnect
	// buffer could hide, or closed.
	ReasonBusDown
	// ReasonTooLarge: over the NATS server's max_payload.
	ReasonTooLarge
	// ReasonUnknownConn: a message for a connection id that is not open on
	// this node.
	ReasonUnknownConn
	// ReasonConnClosed: the connection was closing.
	ReasonConnClosed
	// ReasonSlowConsumer: the connection's outbound queue was full (it is
	// being closed with 1008).
	ReasonSlowConsumer
	// ReasonBadMessage: a malformed message from the bus: text that is not
	// UTF-8, an unknown opcode, a close code that may not be sent, a subject
	// that does not decode.
	ReasonBadMessage
	// ReasonNoSubscribers: a topic message arrived after the node's last
	// subscriber of the topic left.
	ReasonNoSubscribers
	// ReasonBusSlowConsumer: the NATS client dropped inbound messages
	// because this node did not take them fast enough.
	ReasonBusSlowConsumer
	// ReasonLoopBehind: an event loop with subscribers of the topic was
	// too far behind (Limits.MaxLoopBacklog): nobody on this node got it.
	ReasonLoopBehind
	NumReasons
)

// reasonNames are the label values of the reasons.
var reasonNames = [NumReasons]string{
	"queue_full", "bus_down", "too_large", "unknown_conn", "conn_closed",
	"slow_consumer", "bad_message", "no_subscribers", "bus_slow_consumer",
	"loop_behind",
}

// ReasonName returns the label value of reason r ("queue_full",
// "bus_down", ...), also the error a connection request is answered with,
// or "" when r is no reason.
func ReasonName(r int) string { return name(reasonNames[:], r) }

// Outcomes of authorisation requests.
const (
	AuthAllowed     = iota // the reply allowed the connection
	AuthDenied             // the reply refused it (401 or 403)
	AuthTimeout            // no reply within the timeout (401)
	AuthUnavailable        // no bus or nobody subscribed to <prefix>.auth (503)
	AuthInvalid            // a reply that does not parse (502)
	NumOutcomes
)

// outcomeNames are the label values of the outcomes.
var outcomeNames = [NumOutcomes]string{"allowed", "denied", "timeout", "unavailable", "invalid"}

// OutcomeName returns the label value of outcome o ("allowed", "denied",
// "timeout", "unavailable", "invalid"), or "" when o is no outcome.
func OutcomeName(o int) string { return name(outcomeNames[:], o) }

// name is names[i], or "" when i is out of range.
func name(names []string, i int) string {
	if i < 0 || i >= len(names) {
		return ""
	}
	return names[i]
}

// counters are the bus's own counters; the NATS client's drops are added
// when a snapshot is taken.
type counters struct {
	out           [NumKinds]atomic.Uint64
	in            [NumKinds]atomic.Uint64
	undeliverable [NumReasons]atomic.Uint64
	auth          [NumOutcomes]atomic.Uint64
	disconnects   atomic.Uint64
	reconnects    atomic.Uint64
}

func (c *counters) drop(reason int) { c.undeliverable[reason].Add(1) }

// Stats is a snapshot of the bus counters.
type Stats struct {
	State         State
	Out           [NumKinds]uint64   // messages published, by kind
	In            [NumKinds]uint64   // messages received, by kind
	Undeliverable [NumReasons]uint64 // messages dropped, by reason
	Auth          [NumOutcomes]uint64
	AuthPending   int
	Disconnects   uint64 // times the connection to NATS was lost
	Reconnects    uint64 // times it came back
	Topics        int    // topic subjects subscribed (topics with local subscribers)
}
