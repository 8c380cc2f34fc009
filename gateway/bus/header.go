package bus

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// OpCode is a WebSocket opcode (RFC 6455 §5.2): messages on the bus are
// OpText or OpBinary. Its values are the wire's, as gateway.OpCode's: a
// conversion between the two is a cast.
type OpCode uint8

// Opcodes of data messages.
const (
	OpText   OpCode = 0x1
	OpBinary OpCode = 0x2
)

// Header names of the wire contract. NATS headers are MIME-style; the
// values below are canonical and every reader here looks them up as written.
const (
	// HeaderConn is a connection's fleet-wide id, "<node>.<n>".
	HeaderConn = "Upgate-Conn"
	// HeaderNode is the id of the node that holds the connection (or that
	// published a topic message).
	HeaderNode = "Upgate-Node"
	// HeaderRoute is the configured path of the connection's route.
	HeaderRoute = "Upgate-Route"
	// HeaderRemote is the client's address, host:port (after
	// X-Forwarded-For from trusted proxies, or the PROXY protocol).
	HeaderRemote = "Upgate-Remote"
	// HeaderSubprotocol is the negotiated WebSocket subprotocol, when any.
	HeaderSubprotocol = "Upgate-Subprotocol"
	// HeaderTopic is the topic of a connection opened on a pattern route.
	HeaderTopic = "Upgate-Topic"
	// HeaderUser is the user id an authorisation reply gave the connection.
	HeaderUser = "Upgate-User"
	// HeaderOpcode says a message is binary ("binary"); absent or "text",
	// it is text and must be valid UTF-8.
	HeaderOpcode = "Upgate-Opcode"
	// HeaderClose, on a message to <prefix>.conn.<id>, closes the connection
	// with this close code (1000, 1001, 1008, 3000-4999, ...) instead of
	// delivering the message; the body, at most 123 bytes of UTF-8, is the
	// close reason.
	HeaderClose = "Upgate-Close"
	// HeaderCloseCode, on <prefix>.event.close, is the close code the
	// connection ended with (1006: no close frame).
	HeaderCloseCode = "Upgate-Close-Code"
)

// Opcode header values.
const (
	opcodeText   = "text"
	opcodeBinary = "binary"
)

// Lifecycle event names: <prefix>.event.open and <prefix>.event.close.
const (
	EventOpen  = "open"
	EventClose = "close"
)

// MaxCloseReason is the longest close reason a close frame carries.
const MaxCloseReason = 123

// Conn describes one local connection to the bus: everything the headers of
// its bridged messages and events carry. Make it with NewConn once the
// connection's user is known (at open); it is read-only afterwards and safe
// to share between goroutines.
type Conn struct {
	ID          uint64 // the node's connection number
	FleetID     string // "<node>.<n>"
	Route       string // configured path
	Subject     string // bridge routes: <prefix>.in.<route>; "" otherwise
	Remote      string // client address, host:port
	Subprotocol string
	Topic       string
	User        string
	Path        string // request path, for events

	text, binary nats.Header // the headers of bridged messages, built once
}

// NewConn returns the bus description of this node's connection n. subject
// is the bridge subject for bridge routes, "" otherwise.
func (b *Bus) NewConn(n uint64, route, subject, remote, subprotocol, topic, user, path string) *Conn {
	c := &Conn{
		ID: n, FleetID: b.subj.FleetID(n), Route: route, Subject: subject,
		Remote: remote, Subprotocol: subprotocol, Topic: topic, User: user, Path: path,
	}
	c.text = c.header(b.subj.Node())
	c.binary = c.header(b.subj.Node())
	c.binary[HeaderOpcode] = []string{opcodeBinary}
	return c
}

// header returns the connection's headers, without an opcode.
func (c *Conn) header(node string) nats.Header {
	h := nats.Header{
		HeaderConn:   {c.FleetID},
		HeaderNode:   {node},
		HeaderRoute:  {c.Route},
		HeaderRemote: {c.Remote},
	}
	if c.Subprotocol != "" {
		h[HeaderSubprotocol] = []string{c.Subprotocol}
	}
	if c.Topic != "" {
		h[HeaderTopic] = []string{c.Topic}
	}
	if c.User != "" {
		h[HeaderUser] = []string{c.User}
	}
	return h
}

// headerOf returns the shared, read-only headers of a bridged message.
func (c *Conn) headerOf(op OpCode) nats.Header {
	if op == OpBinary {
		return c.binary
	}
	return c.text
}

// get returns the first value of a header written with the canonical name;
// nats.Header keeps names as sent, so a sender that wrote another case is
// looked up too.
func get(h nats.Header, name string) (string, bool) {
	if h == nil {
		return "", false
	}
	if v, ok := h[name]; ok && len(v) > 0 {
		return v[0], true
	}
	if v := h.Get(name); v != "" {
		return v, true
	}
	for k, v := range h {
		if len(v) > 0 && len(k) == len(name) && equalFold(k, name) {
			return v[0], true
		}
	}
	return "", false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// opcodeOf reads the opcode of a message for connections: binary when
// HeaderOpcode says so, else text, which must be valid UTF-8.
func opcodeOf(h nats.Header, data []byte) (OpCode, bool) {
	v, ok := get(h, HeaderOpcode)
	switch {
	case !ok || v == opcodeText:
		return OpText, utf8.Valid(data)
	case v == opcodeBinary:
		return OpBinary, true
	}
	return 0, false
}

// closeOf reads HeaderClose: ok reports the header is present; valid that
// its code may be sent in a close frame and the reason fits.
func closeOf(h nats.Header, data []byte) (code uint16, reason string, ok, valid bool) {
	v, ok := get(h, HeaderClose)
	if !ok {
		return 0, "", false, false
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || !ValidCloseCode(uint16(n)) || len(data) > MaxCloseReason || !utf8.Valid(data) {
		return 0, "", true, false
	}
	return uint16(n), string(data), true, true
}

// ValidCloseCode reports whether a server may send code in a close frame
// (RFC 6455 §7.4): 1000-1003, 1007-1014 and 3000-4999.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// Event is the JSON body of <prefix>.event.open and <prefix>.event.close.
// The headers carry the same connection fields.
type Event struct {
	Event       string `json:"event"` // "open" or "close"
	Conn        string `json:"conn"`  // fleet-wide id
	Node        string `json:"node"`
	Route       string `json:"route"`
	Path        string `json:"path,omitempty"`
	Topic       string `json:"topic,omitempty"`
	Remote      string `json:"remote"`
	Subprotocol string `json:"subprotocol,omitempty"`
	User        string `json:"user,omitempty"`
	Code        int    `json:"code,omitempty"` // close only
	Time        string `json:"time"`           // RFC 3339 with nanoseconds, UTC
}

// eventMsg builds the message of a lifecycle event.
func (b *Bus) eventMsg(name string, c *Conn, code uint16, at time.Time) *nats.Msg {
	e := Event{
		Event: name, Conn: c.FleetID, Node: b.subj.Node(), Route: c.Route, Path: c.Path,
		Topic: c.Topic, Remote: c.Remote, Subprotocol: c.Subprotocol, User: c.User,
		Time: at.UTC().Format(time.RFC3339Nano),
	}
	h := c.header(b.subj.Node())
	if name == EventClose {
		e.Code = int(code)
		h[HeaderCloseCode] = []string{strconv.Itoa(int(code))}
	}
	data, _ := json.Marshal(&e)
	return &nats.Msg{Subject: b.subj.Event(name), Header: h, Data: data}
}
