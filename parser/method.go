package parser

// KnownMethod reports whether m is a request method of RFC 9110 §9 (GET,
// HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE) or PATCH (RFC 5789).
// Methods are case-sensitive. A server answers a method it does not know
// 501 Not Implemented (RFC 9110 §9.1), and a known one a resource does not
// serve 405 Method Not Allowed with Allow (§15.5.6). It allocates nothing.
func KnownMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}
