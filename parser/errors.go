package parser

import "errors"

// ErrNeedMore is returned by [Request.Parse] when the input ends before the
// request head does. Call Parse again with the same bytes followed by more.
var ErrNeedMore = errors.New("parser: need more data")

// Error is a rejection of a request. Status is the HTTP status code to answer
// with, Reason a short human-readable explanation suitable for a response
// body, and Header an optional extra header block (complete lines ending in
// CRLF) that the response must carry, such as the Sec-WebSocket-Version a
// server supports.
type Error struct {
	Status int
	Reason string
	Header string
}

func (e *Error) Error() string { return e.Reason }

// Request syntax errors (RFC 9112 §3, §5).
var (
	ErrBadRequestLine   = &Error{Status: 400, Reason: "parser: malformed request line"}
	ErrBadMethod        = &Error{Status: 400, Reason: "parser: method is not a token"}
	ErrBadTarget        = &Error{Status: 400, Reason: "parser: malformed request target"}
	ErrBadVersion       = &Error{Status: 400, Reason: "parser: malformed HTTP version"}
	ErrVersion          = &Error{Status: 505, Reason: "parser: HTTP version not supported"}
	ErrHTTP2Preface     = &Error{Status: 505, Reason: "parser: HTTP/2 connection preface on an HTTP/1.1 port"}
	ErrBareLF           = &Error{Status: 400, Reason: "parser: line ends in LF without CR"}
	ErrBareCR           = &Error{Status: 400, Reason: "parser: CR not followed by LF"}
	ErrBadFieldName     = &Error{Status: 400, Reason: "parser: malformed header field name"}
	ErrSpaceBeforeColon = &Error{Status: 400, Reason: "parser: whitespace between field name and colon"}
	ErrObsFold          = &Error{Status: 400, Reason: "parser: obsolete line folding"}
	ErrBadFieldValue    = &Error{Status: 400, Reason: "parser: invalid character in header field value"}
	ErrMissingHost      = &Error{Status: 400, Reason: "parser: missing Host header"}
	ErrDuplicateHost    = &Error{Status: 400, Reason: "parser: more than one Host header"}
	ErrBadHost          = &Error{Status: 400, Reason: "parser: malformed Host header"}
	ErrBadContentLength = &Error{Status: 400, Reason: "parser: malformed or conflicting Content-Length"}
	ErrLengthAndChunked = &Error{Status: 400, Reason: "parser: both Content-Length and Transfer-Encoding"}
	ErrBadTE            = &Error{Status: 400, Reason: "parser: malformed Transfer-Encoding"}
	ErrUnsupportedTE    = &Error{Status: 501, Reason: "parser: unsupported Transfer-Encoding"}
	ErrURITooLong       = &Error{Status: 414, Reason: "parser: request line too long"}
	ErrHeadTooLarge     = &Error{Status: 431, Reason: "parser: header too large"}
	ErrTooManyFields    = &Error{Status: 431, Reason: "parser: too many header fields"}
)

// WebSocket handshake errors (RFC 6455 §4.2.1, §4.2.2).
var (
	ErrWebSocketMethod  = &Error{Status: 405, Reason: "parser: WebSocket handshake must use GET", Header: "Allow: GET\r\n"}
	ErrWebSocketKey     = &Error{Status: 400, Reason: "parser: missing or malformed Sec-WebSocket-Key"}
	ErrMissingWSVersion = &Error{Status: 400, Reason: "parser: missing Sec-WebSocket-Version"}
	ErrWebSocketVersion = &Error{Status: 426, Reason: "parser: unsupported Sec-WebSocket-Version", Header: "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"}
	ErrWebSocketBody    = &Error{Status: 400, Reason: "parser: WebSocket handshake must not carry a body"}
	ErrBadExtensions    = &Error{Status: 400, Reason: "parser: malformed Sec-WebSocket-Extensions"}
	ErrBadSubprotocols  = &Error{Status: 400, Reason: "parser: malformed Sec-WebSocket-Protocol"}
)

// ErrWebSocketHTTP10 rejects a WebSocket handshake over HTTP/1.0.
var ErrWebSocketHTTP10 = &Error{Status: 400, Reason: "parser: WebSocket handshake requires HTTP/1.1"}
