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

// classify maps a field name to its id, comparing without regard to case.
// The length picks the one candidate, and its first byte rejects most other
// names before the full comparison.
func classify(name []byte) FieldID {
	var id FieldID
	var want string
	switch len(name) {
	case 4:
		id, want = FieldHost, "host"
	case 6:
		id, want = FieldOrigin, "origin"
	case 7:
		id, want = FieldUpgrade, "upgrade"
	case 10:
		id, want = FieldConnection, "connection"
	case 14:
		id, want = FieldContentLength, "content-length"
	case 15:
		id, want = FieldXForwardedFor, "x-forwarded-for"
	case 17:
		id, want = FieldSecWebSocketKey, "sec-websocket-key"
		if name[0]|0x20 == 't' {
			id, want = FieldTransferEncoding, "transfer-encoding"
		}
	case 21:
		id, want = FieldSecWebSocketVersion, "sec-websocket-version"
	case 22:
		id, want = FieldSecWebSocketProtocol, "sec-websocket-protocol"
	case 24:
		id, want = FieldSecWebSocketExtensions, "sec-websocket-extensions"
	default:
		return FieldOther
	}
	if name[0]|0x20 != want[0] || !equalFoldLower(name, want) {
		return FieldOther
	}
	return id
}

// equalFoldLower compares a token b with a lower-case constant made of
// letters and '-'. For such constants c, b|0x20 == c holds only when b is c
// or its upper-case letter (token bytes exclude the control bytes that
// would also match), so one OR replaces the case test, eight bytes at a
// time where the name is long enough.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	if len(b) < 8 {
		for i := 0; i < len(b); i++ {
			if b[i]|0x20 != s[i] {
				return false
			}
		}
		return true
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])|lanes20 != load64(s, i) {
			return false
		}
	}
	if i < len(b) {
		// The last word overlaps the one before; comparing it again is
		// cheaper than a loop over the tail.
		i = len(b) - 8
		return binary.LittleEndian.Uint64(b[i:])|lanes20 == load64(s, i)
	}
	return true
}

// load64 reads 8 bytes of s at i, little-endian.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}
