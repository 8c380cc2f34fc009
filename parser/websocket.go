package parser

// CheckWebSocket validates the request as a WebSocket opening handshake
// (RFC 6455 §4.2.1) and writes its Sec-WebSocket-Accept value into accept.
// Call it after SelectUpgrade chose WebSocket: the Upgrade and Connection
// fields are not checked again.
//
// Failures carry their status: 405 for a method other than GET; 400 for a
// missing, repeated or malformed Sec-WebSocket-Key, a missing
// Sec-WebSocket-Version, or a body; 426 with "Sec-WebSocket-Version: 13"
// for any other version, or several (RFC 6455 §4.2.2, §4.4).
func (r *Request) CheckWebSocket(accept *[AcceptLen]byte) error {
	if string(r.Method()) != "GET" {
		return ErrWebSocketMethod
	}
	if r.minor != 1 {
		return ErrWebSocketHTTP10
	}
	if r.count[FieldSecWebSocketKey] != 1 {
		return ErrWebSocketKey
	}
	key := r.Value(FieldSecWebSocketKey)
	if !ValidKey(key) {
		return ErrWebSocketKey
	}
	switch r.count[FieldSecWebSocketVersion] {
	case 0:
		return ErrMissingWSVersion
	case 1:
		if string(r.Value(FieldSecWebSocketVersion)) != "13" {
			return ErrWebSocketVersion
		}
	default:
		return ErrWebSocketVersion
	}
	if r.HasBody() {
		// Bytes after the head belong to the WebSocket stream once the
		// server answers 101; a body would be read as frames.
		return ErrWebSocketBody
	}
	AcceptKey(accept, key)
	return nil
}

// SelectSubprotocol returns the first subprotocol of the client's
// Sec-WebSocket-Protocol list, in the client's order, that appears in
// supported (compared exactly: subprotocol names are case-sensitive), or nil
// when there is none. It fails with 400 when an element is not a token
// (RFC 6455 §4.1, item 10).
func (r *Request) SelectSubprotocol(supported []string) ([]byte, error) {
	var chosen []byte
	it := r.List(FieldSecWebSocketProtocol)
	for it.Next() {
		p := it.Elem()
		if !isToken(p) {
			return nil, ErrBadSubprotocols
		}
		if chosen != nil {
			continue
		}
		for _, s := range supported {
			if string(p) == s {
				chosen = p
				break
			}
		}
	}
	return chosen, nil
}

// ExtensionIter walks the extension offers of Sec-WebSocket-Extensions
// (RFC 6455 §9.1) over every field line, in the client's order:
//
//	extension-list = 1#extension
//	extension      = extension-token *( ";" extension-param )
//	extension-param = token [ "=" ( token / quoted-string ) ]
//
// It allocates nothing; names and values are views with the lifetime of the
// Request's accessors. A quoted value is returned without its quotes; one
// that holds a backslash escape is rejected, since after unescaping it must
// be a token, which no client needs to escape.
type ExtensionIter struct {
	lines  ListIter // only its line-walking part is used
	rest   []byte
	name   []byte
	params []byte
	err    error
}

// Extensions returns an iterator over the extension offers.
func (r *Request) Extensions() ExtensionIter {
	return ExtensionIter{lines: r.List(FieldSecWebSocketExtensions)}
}

// Next advances to the next offer. It returns false at the end or on a
// malformed list; Err tells which.
func (it *ExtensionIter) Next() bool {
	if it.err != nil {
		return false
	}
	for {
		for len(it.rest) > 0 && (isOWS(it.rest[0]) || it.rest[0] == ',') {
			it.rest = it.rest[1:]
		}
		if len(it.rest) > 0 {
			break
		}
		if !it.lines.nextLine() {
			return false
		}
		it.rest = it.lines.rest
	}
	n := tokenLen(it.rest)
	if n == 0 {
		it.err = ErrBadExtensions
		return false
	}
	it.name = it.rest[:n]
	end := n
	for quoted := false; end < len(it.rest); end++ {
		c := it.rest[end]
		if c == '"' {
			quoted = !quoted
		} else if c == ',' && !quoted {
			break
		}
	}
	it.params = it.rest[n:end]
	it.rest = it.rest[end:]
	// Validate the parameters now so that Err is reliable after the loop.
	p := it.params
	for {
		_, _, more, ok := nextParam(&p)
		if !ok {
			it.err = ErrBadExtensions
			return false
		}
		if !more {
			return true
		}
	}
}

// Name returns the extension token of the current offer.
func (it *ExtensionIter) Name() []byte { return it.name }

// Param returns the next parameter of the current offer; ok is false when
// there are no more. A parameter without a value has a nil value.
func (it *ExtensionIter) Param() (name, value []byte, ok bool) {
	name, value, more, _ := nextParam(&it.params)
	return name, value, more
}

// Err returns the error that stopped the iteration, or nil.
func (it *ExtensionIter) Err() error { return it.err }

// nextParam consumes `OWS ";" OWS token [ OWS "=" OWS value ] OWS` from p.
// more is false at the end of p; ok is false when p is malformed.
func nextParam(p *[]byte) (name, value []byte, more, ok bool) {
	b := skipOWS(*p)
	if len(b) == 0 {
		*p = b
		return nil, nil, false, true
	}
	if b[0] != ';' {
		return nil, nil, false, false
	}
	b = skipOWS(b[1:])
	n := tokenLen(b)
	if n == 0 {
		return nil, nil, false, false
	}
	name, b = b[:n], skipOWS(b[n:])
	if len(b) > 0 && b[0] == '=' {
		b = skipOWS(b[1:])
		if len(b) > 0 && b[0] == '"' {
			end := 1
			for end < len(b) && b[end] != '"' {
				end++
			}
			if end == len(b) || !isToken(b[1:end]) {
				return nil, nil, false, false
			}
			value, b = b[1:end], b[end+1:]
		} else {
			n = tokenLen(b)
			if n == 0 {
				return nil, nil, false, false
			}
			value, b = b[:n], b[n:]
		}
	}
	*p = b
	return name, value, true, true
}

func skipOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	return b
}

// tokenLen returns the length of the longest prefix of b made of tchar.
func tokenLen(b []byte) int {
	for n, c := range b {
		if charClass[c]&cToken == 0 {
			return n
		}
	}
	return len(b)
}
