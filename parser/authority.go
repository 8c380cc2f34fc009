package parser

// validAuthority reports whether b is uri-host [ ":" port ] (RFC 3986
// §3.2.2–3.2.3), the form of the Host field (RFC 9110 §7.2), of the
// authority in an absolute-form target, which needs a host (RFC 9110
// §4.2.1: an "http" URI with an empty host is invalid), and of a CONNECT
// target, which needs a host and a port (RFC 9112 §3.2.3). It is stricter than RFC 3986 where no client
// needs the freedom: no userinfo (RFC 9110 §4.2.4 calls it an error to act
// upon), no percent-encoding and no IPvFuture in hosts.
func validAuthority(b []byte, needHost, needPort bool) bool {
	host, port, hasPort := b, []byte(nil), false
	if len(b) > 0 && b[0] == '[' {
		end := 1
		for end < len(b) && b[end] != ']' {
			c := b[end]
			if charClass[c]&cHex == 0 && c != ':' && c != '.' {
				return false
			}
			end++
		}
		if end == len(b) || end == 1 {
			return false
		}
		rest := b[end+1:]
		host = b[:end+1]
		if len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		for i, c := range b {
			if c == ':' {
				host, port, hasPort = b[:i], b[i+1:], true
				break
			}
		}
		for _, c := range host {
			if charClass[c]&cHost == 0 || c == ':' || c == '%' || c == '[' || c == ']' {
				return false
			}
		}
	}
	for _, c := range port {
		if c-'0' > 9 {
			return false
		}
	}
	return (!needHost || len(host) > 0) && (!needPort || hasPort && len(port) > 0)
}
