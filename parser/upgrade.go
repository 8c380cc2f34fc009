package parser

// Protocol is a protocol a server is willing to switch to, as named in an
// Upgrade list (RFC 9110 §7.8): protocol-name ["/" protocol-version].
// An empty Version accepts any version the client names, or none; a client
// that names no version accepts any version of the protocol.
type Protocol struct {
	Name    string
	Version string
}

// WebSocket returns the protocol of RFC 6455 (its Upgrade token has no
// version).
func WebSocket() Protocol { return Protocol{Name: "websocket"} }

// SelectUpgrade chooses the protocol to switch to. It returns the index in
// supported of the first protocol of the client's Upgrade list (which is in
// descending order of preference) that the server supports, and the version
// the client named for it; -1 when the upgrade must be ignored.
//
// RFC 9110 §7.8 rules applied:
//   - Upgrade is an HTTP/1.1 mechanism: it is ignored in an HTTP/1.0 request.
//   - A sender of Upgrade must list "upgrade" in Connection; a server that
//     receives Upgrade without it must ignore the Upgrade.
//   - Names compare without regard to case ("recipients SHOULD use
//     case-insensitive comparison when matching each protocol-name"),
//     versions exactly. A client element without a version matches the
//     protocol at any version the server lists: the client asked for the
//     protocol, not for a version of it. Malformed list elements are
//     skipped, as are protocols the server does not know.
//
// HTTP/2 cleartext ("h2c", RFC 9113 §3.1) is never chosen, whatever
// supported says: HTTP/2 forbids the upgrade mechanism.
func (r *Request) SelectUpgrade(supported []Protocol) (index int, version []byte) {
	if r.minor != 1 || r.count[FieldUpgrade] == 0 || !r.ConnectionHas("upgrade") {
		return -1, nil
	}
	it := r.List(FieldUpgrade)
	for it.Next() {
		name, ver, ok := splitProtocol(it.Elem())
		if !ok || isHTTP2(name, ver) {
			continue
		}
		for i := range supported {
			p := &supported[i]
			if equalFold(name, p.Name) && (p.Version == "" || len(ver) == 0 || string(ver) == p.Version) {
				return i, ver
			}
		}
	}
	return -1, nil
}

// WantsUpgrade reports whether the request validly asks for some upgrade
// (an HTTP/1.1 Upgrade field with the "upgrade" connection option), whether
// or not the server supports the protocol.
func (r *Request) WantsUpgrade() bool {
	return r.minor == 1 && r.count[FieldUpgrade] != 0 && r.ConnectionHas("upgrade")
}

func isHTTP2(name, version []byte) bool {
	return equalFold(name, "h2c") || (equalFold(name, "http") && len(version) > 0 && version[0] == '2')
}
