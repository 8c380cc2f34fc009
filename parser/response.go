package parser

import (
	"strconv"
	"strings"
)

// AppendSwitching appends the 101 Switching Protocols response that
// completes a WebSocket handshake (RFC 6455 §4.2.2). subprotocol and
// extensions are the Sec-WebSocket-Protocol and Sec-WebSocket-Extensions
// values the server selected; empty means the header is left out.
func AppendSwitching(dst []byte, accept *[AcceptLen]byte, subprotocol, extensions []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, accept[:]...)
	if len(subprotocol) > 0 {
		dst = append(dst, "\r\nSec-WebSocket-Protocol: "...)
		dst = append(dst, subprotocol...)
	}
	if len(extensions) > 0 {
		dst = append(dst, "\r\nSec-WebSocket-Extensions: "...)
		dst = append(dst, extensions...)
	}
	return append(dst, "\r\n\r\n"...)
}

// AppendSwitchingTo appends the 101 Switching Protocols response that
// switches to protocol, a "name[/version]" token the client listed (RFC
// 9110 §7.8: the server "MUST send an Upgrade header field to indicate the
// new protocol(s) to which the connection is being switched", and lists
// "upgrade" in Connection since it sends Upgrade). The new protocol starts
// right after the response's empty line. protocol must be a valid
// protocol token: it is written as it is.
func AppendSwitchingTo(dst, protocol []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "...)
	dst = append(dst, protocol...)
	return append(dst, "\r\n\r\n"...)
}

// AppendUpgradeRequired appends a 426 Upgrade Required response for a route
// that only speaks the given protocols, listed in the server's order of
// preference (RFC 9110 §15.5.22: the response MUST carry Upgrade; §7.8: and
// then "upgrade" in Connection). The connection is closed after it. With no
// protocols given, it names WebSocket.
func AppendUpgradeRequired(dst []byte, protocols []Protocol) []byte {
	if len(protocols) == 0 {
		protocols = defaultProtocols
	}
	dst = appendStatusLine(dst, 426)
	dst = append(dst, "Upgrade: "...)
	for i, p := range protocols {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, p.Name...)
		if p.Version != "" {
			dst = append(dst, '/')
			dst = append(dst, p.Version...)
		}
	}
	dst = append(dst, "\r\nConnection: Upgrade, close\r\n"...)
	for _, p := range protocols {
		if strings.EqualFold(p.Name, WebSocket().Name) {
			dst = append(dst, "Sec-WebSocket-Version: 13\r\n"...)
			break
		}
	}
	const body = "This resource is only reachable through a protocol upgrade.\n"
	return appendBody(dst, "text/plain; charset=utf-8", body)
}

var defaultProtocols = []Protocol{WebSocket()}

// AppendError appends the response for a rejected request: its status, any
// header the rejection requires, a plain-text body with e.Body (without one,
// the status's reason phrase as a sentence: "Not Found."; never e.Reason,
// which is for logs), and "Connection: close" since the connection ends
// after it. A 426 carries its Upgrade header in e.Header and lists
// "upgrade" in Connection too.
func AppendError(dst []byte, e *Error) []byte {
	dst = appendStatusLine(dst, e.Status)
	dst = append(dst, e.Header...)
	if e.Status == 426 {
		// RFC 9110 §7.8: a sender of Upgrade also lists "upgrade" in Connection.
		dst = append(dst, "Connection: Upgrade, close\r\n"...)
	} else {
		dst = append(dst, "Connection: close\r\n"...)
	}
	body, end := e.Body, "\n"
	if body == "" {
		body, end = StatusText(e.Status), ".\n"
		if body == "Status" {
			body = "Request refused"
		}
	}
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)+len(end)), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, body...)
	return append(dst, end...)
}

// AppendResponse appends a complete plain HTTP/1.1 response. header holds
// extra header lines, each ending in CRLF; keepAlive false adds
// "Connection: close". A 1xx, 204 or 304 response has neither content nor
// Content-Length, whatever body holds.
func AppendResponse(dst []byte, status int, header, contentType string, body []byte, keepAlive bool) []byte {
	dst = appendResponseHead(dst, status, header, contentType, len(body), keepAlive)
	if noContent(status) {
		return dst
	}
	return append(dst, body...)
}

// AppendHeadResponse appends the answer to a HEAD request: the head of the
// response AppendResponse would give for a body of bodyLen bytes, with its
// Content-Length, but no content (RFC 9110 §9.3.2).
func AppendHeadResponse(dst []byte, status int, header, contentType string, bodyLen int, keepAlive bool) []byte {
	return appendResponseHead(dst, status, header, contentType, bodyLen, keepAlive)
}

func appendResponseHead(dst []byte, status int, header, contentType string, bodyLen int, keepAlive bool) []byte {
	dst = appendStatusLine(dst, status)
	dst = append(dst, header...)
	if !keepAlive {
		dst = append(dst, "Connection: close\r\n"...)
	}
	if noContent(status) {
		// RFC 9110 §8.6: no Content-Length in a 1xx or 204 response;
		// none of these carries content (RFC 9110 §6.4.1).
		return append(dst, "\r\n"...)
	}
	if contentType != "" {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, contentType...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(bodyLen), 10)
	return append(dst, "\r\n\r\n"...)
}

func noContent(status int) bool { return status < 200 || status == 204 || status == 304 }

func appendBody[B string | []byte](dst []byte, contentType string, body B) []byte {
	if contentType != "" {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, contentType...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func appendStatusLine(dst []byte, status int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(status)...)
	return append(dst, "\r\n"...)
}

// StatusText returns the reason phrase for the statuses a gateway answers
// with, or "Status" for others (RFC 9112 §4: clients ignore the phrase).
func StatusText(status int) string {
	switch status {
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status"
}
