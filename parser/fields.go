package parser

import "encoding/binary"

// commitField records the value of the field line just read and classifies
// its name.
func (r *Request) commitField(value span) error {
	f := &r.fields[len(r.fields)-1]
	f.value = value
	f.id = classify(r.buf[f.name.off:f.name.end])
	if f.id == FieldOther {
		return nil
	}
	if r.first[f.id] == 0 {
		r.first[f.id] = int32(len(r.fields))
	}
	if r.count[f.id] < 255 {
		r.count[f.id]++
	}
	switch f.id {
	case FieldHost:
		if r.count[FieldHost] > 1 {
			return ErrDuplicateHost
		}
		if !validAuthority(r.buf[value.off:value.end], false, false) {
			return ErrBadHost
		}
	case FieldContentLength:
		n, ok := parseDecimal(r.buf[value.off:value.end])
		// RFC 9112 §6.3: several lines must agree, else the framing is
		// unknowable and the request is rejected.
		if !ok || (r.contentLength >= 0 && n != r.contentLength) {
			return ErrBadContentLength
		}
		r.contentLength = n
	case FieldTransferEncoding:
		if r.count[FieldTransferEncoding] > 1 {
			return ErrBadTE
		}
		// The only coding this server decodes is chunked alone.
		if !equalFold(r.buf[value.off:value.end], "chunked") {
			return ErrUnsupportedTE
		}
	}
	return nil
}

// finish applies the checks that need the whole head.
func (r *Request) finish() error {
	if r.count[FieldTransferEncoding] != 0 {
		// RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty
		// framing, and together with Content-Length it is a smuggling
		// attempt; both are rejected.
		if r.minor == 0 {
			return ErrBadTE
		}
		if r.count[FieldContentLength] != 0 {
			return ErrLengthAndChunked
		}
	}
	// RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request that
	// lacks a Host header field (duplicates are caught as they arrive).
	if r.minor == 1 && r.count[FieldHost] == 0 {
		return ErrMissingHost
	}
	return nil
}

// parseDecimal parses 1*DIGIT of at most 18 digits, so it cannot overflow.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c-'0' > 9 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// knownField is a recognised field name. Names of eight bytes or more are
// compared as little-endian words at offs (the last overlapping the one
// before), so a match costs two or three loads instead of a loop.
type knownField struct {
	id    FieldID
	name  string
	nw    int
	offs  [3]int
	words [3]uint64
}

// knownByLen indexes the recognised names by length; two share length 17.
var knownByLen = func() (t [25][2]knownField) {
	names := []struct {
		id   FieldID
		name string
	}{
		{FieldHost, "host"}, {FieldOrigin, "origin"}, {FieldUpgrade, "upgrade"},
		{FieldConnection, "connection"}, {FieldContentLength, "content-length"},
		{FieldXForwardedFor, "x-forwarded-for"}, {FieldSecWebSocketKey, "sec-websocket-key"},
		{FieldTransferEncoding, "transfer-encoding"}, {FieldSecWebSocketVersion, "sec-websocket-version"},
		{FieldSecWebSocketProtocol, "sec-websocket-protocol"},
		{FieldSecWebSocketExtensions, "sec-websocket-extensions"},
	}
	for _, n := range names {
		k := knownField{id: n.id, name: n.name}
		if l := len(n.name); l >= 8 {
			for off := 0; off < l; off += 8 {
				off = min(off, l-8)
				k.offs[k.nw] = off
				k.words[k.nw] = binary.LittleEndian.Uint64([]byte(n.name[off : off+8]))
				k.nw++
			}
		}
		slot := &t[len(n.name)]
		if slot[0].id == FieldOther {
			slot[0] = k
		} else {
			slot[1] = k
		}
	}
	return t
}()

// classify maps a field name to its id, comparing without regard to case.
//
// For the lower-case letters and '-' that make up the known names, b|0x20
// equals the known byte only when b is that byte or its upper-case letter
// (field names are tokens, so the control bytes that would also match
// cannot occur): one OR replaces the case test, eight bytes at a time.
func classify(name []byte) FieldID {
	if len(name) >= len(knownByLen) {
		return FieldOther
	}
	cands := &knownByLen[len(name)]
	for i := range cands {
		k := &cands[i]
		if k.id == FieldOther {
			break
		}
		if len(name) < 8 {
			if equalFoldLower(name, k.name) {
				return k.id
			}
			continue
		}
		match := true
		for w := 0; w < k.nw; w++ {
			if binary.LittleEndian.Uint64(name[k.offs[w]:])|lanes20 != k.words[w] {
				match = false
				break
			}
		}
		if match {
			return k.id
		}
	}
	return FieldOther
}

// equalFoldLower compares a short token b with a lower-case constant made of
// letters and '-', byte by byte, as classify does by words.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}
