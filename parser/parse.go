package parser

import "bytes"

// state is where the scanner stands between two calls to Parse.
type state uint8

const (
	stStart      state = iota // before the request line; empty lines are skipped
	stStartLF                 // after a CR of an empty leading line
	stMethod                  // in the method
	stTarget                  // in the request-target
	stVersion                 // in the HTTP version
	stLineLF                  // after the CR ending the request line
	stFieldStart              // at the start of a field line or the final CRLF
	stFieldName               // in a field name
	stFieldOWS                // after the colon, before the value
	stFieldValue              // in a field value
	stFieldLF                 // after the CR ending a field line
	stHeadLF                  // after the CR of the empty line ending the head
	stDone                    // head complete
	stFailed                  // rejected; err is set
)

// Parse reads a request head from buf, which holds the connection's input
// from the first byte of the request. It returns the length of the head
// (the offset of the first byte after the blank line) once the head is
// complete, ErrNeedMore when buf ends first, or an *Error naming the status
// to answer with.
//
// After ErrNeedMore, call Parse again with buf extended by the bytes that
// arrived since: the bytes already given must be unchanged, but buf may have
// moved. Parse resumes where it stopped, so feeding a head one byte at a time
// costs O(n) in total. After a head is complete or rejected, Parse returns
// the same result until Reset.
//
// Line endings: RFC 9112 §2.2 lets a recipient accept a bare LF as a line
// terminator. This parser does not: a LF not preceded by CR, like a CR not
// followed by LF, is rejected with 400, because peers that disagree on line
// boundaries are the root of request smuggling. Empty lines before the
// request line are skipped, as RFC 9112 §2.2 recommends.
func (r *Request) Parse(buf []byte) (int, error) {
	r.buf = buf
	switch r.state {
	case stDone:
		return r.headLen, nil
	case stFailed:
		return 0, r.err
	}
	limit, capped := len(buf), false
	if limit > r.limits.MaxHeadBytes {
		limit, capped = r.limits.MaxHeadBytes, true
	}
	i := r.pos
	for {
		if i >= limit {
			return r.needMore(i, capped)
		}
		switch r.state {
		case stStart:
			switch buf[i] {
			case '\r':
				r.state = stStartLF
				i++
			case '\n':
				return r.fail(ErrBareLF)
			default:
				r.mark = i
				r.state = stMethod
			}
		case stStartLF:
			if buf[i] != '\n' {
				return r.fail(ErrBareCR)
			}
			r.state = stStart
			i++
		case stMethod:
			i += tokenLen(buf[i:limit])
			if i == limit {
				continue
			}
			if buf[i] != ' ' || i == r.mark {
				return r.fail(ErrBadMethod)
			}
			r.method = span{int32(r.mark), int32(i)}
			i++
			r.mark = i
			r.state = stTarget
		case stTarget:
			i += targetSpan(buf[i:limit])
			if i == limit {
				continue
			}
			if buf[i] != ' ' || i == r.mark {
				return r.fail(ErrBadTarget)
			}
			r.target = span{int32(r.mark), int32(i)}
			i++
			r.mark = i
			r.state = stVersion
		case stVersion:
			i += targetSpan(buf[i:limit])
			if i == limit {
				continue
			}
			switch buf[i] {
			case '\r':
			case '\n':
				return r.fail(ErrBareLF)
			default:
				return r.fail(ErrBadRequestLine)
			}
			r.version = span{int32(r.mark), int32(i)}
			r.lineEnd = i
			if err := r.checkRequestLine(); err != nil {
				return r.fail(err)
			}
			i++
			r.state = stLineLF
		case stLineLF:
			if buf[i] != '\n' {
				return r.fail(ErrBareCR)
			}
			i++
			r.state = stFieldStart
		// The states of a field line fall through to each other while bytes
		// remain, so a complete line costs one dispatch, not five.
		case stFieldStart:
			switch buf[i] {
			case '\r':
				r.state = stHeadLF
				i++
				continue
			case '\n':
				return r.fail(ErrBareLF)
			case ' ', '\t':
				// RFC 9112 §5.2: obs-fold is rejected; §2.2: so is
				// whitespace between the start-line and the first field.
				return r.fail(ErrObsFold)
			}
			if len(r.fields) == r.limits.MaxFields {
				return r.fail(ErrTooManyFields)
			}
			r.mark = i
			r.state = stFieldName
			fallthrough
		case stFieldName:
			i += tokenLen(buf[i:limit])
			if i == limit {
				continue
			}
			if buf[i] != ':' || i == r.mark {
				if isOWS(buf[i]) && i > r.mark {
					// RFC 9112 §5.1: a server MUST reject a request with
					// whitespace between a field name and the colon.
					return r.fail(ErrSpaceBeforeColon)
				}
				return r.fail(ErrBadFieldName)
			}
			r.fields = append(r.fields, field{name: span{int32(r.mark), int32(i)}})
			i++
			r.state = stFieldOWS
			fallthrough
		case stFieldOWS:
			for i < limit && isOWS(buf[i]) {
				i++
			}
			if i == limit {
				continue
			}
			r.mark = i
			r.valueEnd = i
			r.state = stFieldValue
			fallthrough
		case stFieldValue:
			n := valueSpan(buf[i:limit])
			// The value ends at its last byte that is not OWS; trailing
			// OWS is not part of it (RFC 9110 §5.5).
			for k := i + n; k > i; k-- {
				if !isOWS(buf[k-1]) {
					r.valueEnd = k
					break
				}
			}
			i += n
			if i == limit {
				continue
			}
			switch buf[i] {
			case '\r':
			case '\n':
				return r.fail(ErrBareLF)
			default:
				return r.fail(ErrBadFieldValue)
			}
			if err := r.commitField(span{int32(r.mark), int32(r.valueEnd)}); err != nil {
				return r.fail(err)
			}
			i++
			r.state = stFieldLF
			fallthrough
		case stFieldLF:
			if i == limit {
				continue
			}
			if buf[i] != '\n' {
				return r.fail(ErrBareCR)
			}
			i++
			r.state = stFieldStart
		case stHeadLF:
			if buf[i] != '\n' {
				return r.fail(ErrBareCR)
			}
			i++
			if err := r.finish(); err != nil {
				return r.fail(err)
			}
			r.pos, r.headLen, r.state = i, i, stDone
			return i, nil
		}
	}
}

// needMore saves the position, or fails when the head limit is reached.
func (r *Request) needMore(i int, capped bool) (int, error) {
	r.pos = i
	if capped {
		if r.state <= stVersion {
			return r.fail(ErrURITooLong)
		}
		return r.fail(ErrHeadTooLarge)
	}
	return 0, ErrNeedMore
}

func (r *Request) fail(err error) (int, error) {
	r.state, r.err = stFailed, err
	return 0, err
}

// checkRequestLine validates the method, target and version once the
// request line is complete (RFC 9112 §3).
func (r *Request) checkRequestLine() error {
	v := r.view(r.version)
	method := r.view(r.method)
	// RFC 9113 §3.4: the HTTP/2 connection preface starts with this line.
	if string(method) == "PRI" && string(r.view(r.target)) == "*" && string(v) == "HTTP/2.0" {
		return ErrHTTP2Preface
	}
	// HTTP-version = HTTP-name "/" DIGIT "." DIGIT
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[5]-'0' > 9 || v[6] != '.' || v[7]-'0' > 9 {
		return ErrBadVersion
	}
	if v[5] != '1' || v[7] > '1' {
		return ErrVersion
	}
	r.minor = int(v[7] - '0')
	return r.splitTarget(string(method) == "CONNECT", string(method) == "OPTIONS")
}

// splitTarget classifies the request-target (RFC 9112 §3.2) and records its
// path and query.
func (r *Request) splitTarget(connect, options bool) error {
	t := r.target
	b := r.view(t)
	// RFC 9112 §3.2: a request-target carries no fragment.
	if !validEscapes(b) || bytes.IndexByte(b, '#') >= 0 {
		return ErrBadTarget
	}
	switch {
	case b[0] == '/': // origin-form
		r.path = t
		// A CONNECT with a path is not authority-form; net/rpc uses it.
	case len(b) == 1 && b[0] == '*': // asterisk-form
		if !options {
			return ErrBadTarget
		}
		return nil
	case connect: // authority-form
		if !validAuthority(b, true, true) {
			return ErrBadTarget
		}
		return nil
	default: // absolute-form: scheme "://" authority path-abempty [ "?" query ]
		n := schemeLen(b)
		if n == 0 || len(b) < n+3 || string(b[n:n+3]) != "://" {
			return ErrBadTarget
		}
		i := n + 3
		for i < len(b) && b[i] != '/' && b[i] != '?' && b[i] != '#' {
			i++
		}
		if !validAuthority(b[n+3:i], true, false) {
			return ErrBadTarget
		}
		r.path = span{t.off + int32(i), t.end}
	}
	p := r.view(r.path)
	for i, c := range p {
		if c == '?' {
			r.query = span{r.path.off + int32(i) + 1, r.path.end}
			r.path.end = r.path.off + int32(i)
			break
		}
	}
	return nil
}

// schemeLen returns the length of the URI scheme at the start of b
// (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), or 0.
func schemeLen(b []byte) int {
	for i, c := range b {
		switch {
		case c|0x20 >= 'a' && c|0x20 <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return i
		}
	}
	return len(b)
}

// validEscapes reports whether every '%' in b starts a pct-encoded triplet.
func validEscapes(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] == '%' {
			if i+2 >= len(b) || charClass[b[i+1]]&cHex == 0 || charClass[b[i+2]]&cHex == 0 {
				return false
			}
			i += 2
		}
	}
	return true
}
