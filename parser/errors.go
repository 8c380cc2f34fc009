package parser

import "errors"

// ErrNeedMore is returned by [Request.Parse] when the input ends before the
// request head does. Call Parse again with the same bytes followed by more.
var ErrNeedMore = errors.New("parser: need more data")

// Error is a rejection of a request. Status is the HTTP status code to answer
// with; Reason the Go error text, prefixed with the package that found the
// fault, for logs; Body the plain sentence the response carries to the
// client (empty: the status's reason phrase as a sentence); and Header
// an optional extra header block (complete lines ending in CRLF) that the
// response must carry, such as the Sec-WebSocket-Version a server supports.
type Error struct {
	Status int
	Reason string
	Body   string
	Header string
}

func (e *Error) Error() string { return e.Reason }

// Request syntax errors (RFC 9112 §3, §5).
var (
	ErrBadRequestLine   = &Error{Status: 400, Reason: "parser: malformed request line", Body: "Malformed request line."}
	ErrBadMethod        = &Error{Status: 400, Reason: "parser: method is not a token", Body: "The request method is not a valid token."}
	ErrBadTarget        = &Error{Status: 400, Reason: "parser: malformed request target", Body: "Malformed request target."}
	ErrBadVersion       = &Error{Status: 400, Reason: "parser: malformed HTTP version", Body: "Malformed HTTP version."}
	ErrVersion          = &Error{Status: 505, Reason: "parser: HTTP version not supported", Body: "HTTP version not supported; use HTTP/1.1."}
	ErrHTTP2Preface     = &Error{Status: 505, Reason: "parser: HTTP/2 connection preface on an HTTP/1.1 port", Body: "HTTP/2 is not spoken on this port; use HTTP/1.1."}
	ErrBareLF           = &Error{Status: 400, Reason: "parser: line ends in LF without CR", Body: "A line of the request ends in LF without CR."}
	ErrBareCR           = &Error{Status: 400, Reason: "parser: CR not followed by LF", Body: "The request holds a CR not followed by LF."}
	ErrBadFieldName     = &Error{Status: 400, Reason: "parser: malformed header field name", Body: "Malformed header field name."}
	ErrSpaceBeforeColon = &Error{Status: 400, Reason: "parser: whitespace between field name and colon", Body: "Whitespace between a header field name and its colon."}
	ErrObsFold          = &Error{Status: 400, Reason: "parser: obsolete line folding", Body: "Obsolete line folding in a header field."}
	ErrBadFieldValue    = &Error{Status: 400, Reason: "parser: invalid character in header field value", Body: "Invalid character in a header field value."}
	ErrMissingHost      = &Error{Status: 400, Reason: "parser: missing Host header", Body: "The request has no Host header."}
	ErrDuplicateHost    = &Error{Status: 400, Reason: "parser: more than one Host header", Body: "The request has more than one Host header."}
	ErrBadHost          = &Error{Status: 400, Reason: "parser: malformed Host header", Body: "Malformed Host header."}
	ErrBadContentLength = &Error{Status: 400, Reason: "parser: malformed or conflicting Content-Length", Body: "Malformed or conflicting Content-Length."}
	ErrLengthAndChunked = &Error{Status: 400, Reason: "parser: both Content-Length and Transfer-Encoding", Body: "The request has both Content-Length and Transfer-Encoding."}
	ErrBadTE            = &Error{Status: 400, Reason: "parser: malformed Transfer-Encoding", Body: "Malformed Transfer-Encoding."}
	ErrUnsupportedTE    = &Error{Status: 501, Reason: "parser: unsupported Transfer-Encoding", Body: "Transfer-Encoding not supported."}
	ErrURITooLong       = &Error{Status: 414, Reason: "parser: request line too long", Body: "Request line too long."}
	ErrHeadTooLarge     = &Error{Status: 431, Reason: "parser: header too large", Body: "Request header fields too large."}
	ErrTooManyFields    = &Error{Status: 431, Reason: "parser: too many header fields", Body: "Too many header fields."}
)

// WebSocket handshake errors (RFC 6455 §4.2.1, §4.2.2).
var (
	ErrWebSocketMethod  = &Error{Status: 405, Reason: "parser: WebSocket handshake must use GET", Body: "A WebSocket handshake must use GET.", Header: "Allow: GET\r\n"}
	ErrWebSocketKey     = &Error{Status: 400, Reason: "parser: missing or malformed Sec-WebSocket-Key", Body: "Missing or malformed Sec-WebSocket-Key."}
	ErrMissingWSVersion = &Error{Status: 400, Reason: "parser: missing Sec-WebSocket-Version", Body: "Missing Sec-WebSocket-Version."}
	ErrWebSocketVersion = &Error{Status: 426, Reason: "parser: unsupported Sec-WebSocket-Version", Body: "Unsupported Sec-WebSocket-Version; this server speaks version 13.", Header: "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"}
	ErrWebSocketBody    = &Error{Status: 400, Reason: "parser: WebSocket handshake must not carry a body", Body: "A WebSocket handshake must not carry a body."}
	ErrBadExtensions    = &Error{Status: 400, Reason: "parser: malformed Sec-WebSocket-Extensions", Body: "Malformed Sec-WebSocket-Extensions."}
	ErrBadSubprotocols  = &Error{Status: 400, Reason: "parser: malformed Sec-WebSocket-Protocol", Body: "Malformed Sec-WebSocket-Protocol."}
)

// ErrWebSocketHTTP10 rejects a WebSocket handshake over HTTP/1.0.
var ErrWebSocketHTTP10 = &Error{Status: 400, Reason: "parser: WebSocket handshake requires HTTP/1.1", Body: "A WebSocket handshake requires HTTP/1.1."}
