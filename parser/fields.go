package parser

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
		if !validAuthority(r.buf[value.off:value.end], false) {
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
// The switch on length keeps it to one comparison for most names.
func classify(name []byte) FieldID {
	switch len(name) {
	case 4:
		if equalFoldLower(name, "host") {
			return FieldHost
		}
	case 6:
		if equalFoldLower(name, "origin") {
			return FieldOrigin
		}
	case 7:
		if equalFoldLower(name, "upgrade") {
			return FieldUpgrade
		}
	case 10:
		if equalFoldLower(name, "connection") {
			return FieldConnection
		}
	case 14:
		if equalFoldLower(name, "content-length") {
			return FieldContentLength
		}
	case 15:
		if equalFoldLower(name, "x-forwarded-for") {
			return FieldXForwardedFor
		}
	case 17:
		if equalFoldLower(name, "sec-websocket-key") {
			return FieldSecWebSocketKey
		}
		if equalFoldLower(name, "transfer-encoding") {
			return FieldTransferEncoding
		}
	case 21:
		if equalFoldLower(name, "sec-websocket-version") {
			return FieldSecWebSocketVersion
		}
	case 22:
		if equalFoldLower(name, "sec-websocket-protocol") {
			return FieldSecWebSocketProtocol
		}
	case 24:
		if equalFoldLower(name, "sec-websocket-extensions") {
			return FieldSecWebSocketExtensions
		}
	}
	return FieldOther
}

// equalFoldLower compares a token b with a lower-case constant made of
// letters and '-'. For such constants c, b|0x20 == c holds only when b is c
// or its upper-case letter, so one OR replaces the case test.
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
