package gateway

import "strconv"

// OpCode is the opcode of a WebSocket frame (RFC 6455 §5.2). A message is
// OpText or OpBinary; OpPing and OpPong are the control frames an
// application may send (Conn.Send) and see (PingHandler, PongHandler).
type OpCode uint8

// Opcodes of the frames an application sends and receives.
const (
	OpText   OpCode = 0x1
	OpBinary OpCode = 0x2
	OpPing   OpCode = 0x9
	OpPong   OpCode = 0xa
)

// String returns "text", "binary", "ping" or "pong", else "OpCode(n)".
func (op OpCode) String() string {
	switch op {
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "OpCode(" + strconv.Itoa(int(op)) + ")"
}

// StatusCode is a WebSocket close code (RFC 6455 §7.4). Handler.OnClose
// reports one; Conn.Close and Gateway.Disconnect send one. A close frame
// may carry 1000 to 1003, 1007 to 1014 and the application's codes, 3000
// to 4999 (3000 to 3999 registered with IANA, 4000 to 4999 private); 1005,
// 1006 and 1015 are only ever reported, never sent.
type StatusCode uint16

// Close codes of RFC 6455 §7.4.1 and of the IANA registry.
const (
	StatusNormalClosure           StatusCode = 1000 // the purpose was fulfilled
	StatusGoingAway               StatusCode = 1001 // server shutting down, idle timeout, page left
	StatusProtocolError           StatusCode = 1002 // the peer broke the protocol
	StatusUnsupportedData         StatusCode = 1003 // a type of message the endpoint cannot take
	StatusNoStatusRcvd            StatusCode = 1005 // reported: the close frame had no code
	StatusAbnormalClosure         StatusCode = 1006 // reported: TCP ended without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007 // a text message that is not UTF-8
	StatusPolicyViolation         StatusCode = 1008 // refused by policy (a slow consumer, a denied publish)
	StatusMessageTooBig           StatusCode = 1009 // a message over the route's max_message
	StatusMandatoryExtension      StatusCode = 1010 // the client needed an extension the server did not offer
	StatusInternalServerError     StatusCode = 1011 // the server met an unexpected condition
	StatusServiceRestart          StatusCode = 1012 // the service is restarting
	StatusTryAgainLater           StatusCode = 1013 // overloaded: try again later
	StatusBadGateway              StatusCode = 1014 // an upstream server answered badly
	StatusTLSHandshake            StatusCode = 1015 // reported: the TLS handshake failed
)

var statusNames = [...]string{
	StatusNormalClosure - 1000:           "normal closure",
	StatusGoingAway - 1000:               "going away",
	StatusProtocolError - 1000:           "protocol error",
	StatusUnsupportedData - 1000:         "unsupported data",
	StatusNoStatusRcvd - 1000:            "no status received",
	StatusAbnormalClosure - 1000:         "abnormal closure",
	StatusInvalidFramePayloadData - 1000: "invalid frame payload data",
	StatusPolicyViolation - 1000:         "policy violation",
	StatusMessageTooBig - 1000:           "message too big",
	StatusMandatoryExtension - 1000:      "mandatory extension",
	StatusInternalServerError - 1000:     "internal server error",
	StatusServiceRestart - 1000:          "service restart",
	StatusTryAgainLater - 1000:           "try again later",
	StatusBadGateway - 1000:              "bad gateway",
	StatusTLSHandshake - 1000:            "TLS handshake",
}

// String returns the code and, for a code of the registry, its name, as
// net/http writes a status: "1000 normal closure", "4002".
func (c StatusCode) String() string {
	s := strconv.Itoa(int(c))
	if c >= 1000 && int(c-1000) < len(statusNames) && statusNames[c-1000] != "" {
		s += " " + statusNames[c-1000]
	}
	return s
}
