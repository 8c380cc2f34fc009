package parser

// Default limits for a request head.
const (
	DefaultMaxHeadBytes = 8 << 10
	DefaultMaxFields    = 100

	// maxHeadBytes bounds MaxHeadBytes so offsets fit in a span.
	maxHeadBytes = 1 << 30
)

// Limits bound the resources one request head may take.
type Limits struct {
	// MaxHeadBytes is the largest request head accepted, request line and
	// header section together, blank line included. A request line that
	// alone exceeds it is answered 414, a head that does 431.
	// Zero means DefaultMaxHeadBytes.
	MaxHeadBytes int
	// MaxFields is the largest number of header field lines accepted;
	// more is answered 431. Zero means DefaultMaxFields.
	MaxFields int
}

func (l Limits) normalized() Limits {
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if l.MaxHeadBytes > maxHeadBytes {
		l.MaxHeadBytes = maxHeadBytes
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	return l
}

// FieldID names the header fields the parser recognises while it reads them.
type FieldID uint8

// Recognised header fields. FieldOther is any other name.
const (
	FieldOther FieldID = iota
	FieldHost
	FieldConnection
	FieldUpgrade
	FieldContentLength
	FieldTransferEncoding
	FieldOrigin
	FieldXForwardedFor
	FieldSecWebSocketKey
	FieldSecWebSocketVersion
	FieldSecWebSocketProtocol
	FieldSecWebSocketExtensions
	numFieldIDs
)

// span is a half-open byte range [off, end) of the input.
type span struct{ off, end int32 }

func (s span) len() int { return int(s.end - s.off) }

type field struct {
	name, value span
	id          FieldID
}

// Request is a parsed HTTP/1.x request head. Its accessors return views into
// the buffer last passed to Parse (see the package documentation for how long
// they live). A Request is reused across connections with Reset; after the
// first use it allocates nothing.
//
// A Request is not safe for concurrent use; an event loop keeps one per
// connection that is still in its handshake, or one per loop.
type Request struct {
	limits Limits
	buf    []byte

	// Resumable scanner state: where the next call continues.
	state    state
	pos      int
	mark     int
	valueEnd int
	err      error
	headLen  int
	lineEnd  int // end of the request line (offset of its CR)

	method, target, path, query, version span
	minor                                int

	fields []field
	first  [numFieldIDs]int32 // index+1 of the first field of each recognised id; 0 if absent
	count  [numFieldIDs]uint8 // number of fields of each recognised id, saturating

	contentLength int64
}

// NewRequest returns a Request with the given limits.
func NewRequest(l Limits) *Request {
	r := new(Request)
	r.Init(l)
	return r
}

// initialFields is the field table a Request starts with: room for every
// head of the realistic corpus (browsers send 12 to 20 lines). A longer
// head grows the table once, up to MaxFields, and Reset keeps it, so
// memory follows the bytes peers actually sent, not the configured bound.
const initialFields = 32

// Init sets the limits and resets r.
func (r *Request) Init(l Limits) {
	r.limits = l.normalized()
	if r.fields == nil {
		r.fields = make([]field, 0, min(r.limits.MaxFields, initialFields))
	}
	r.Reset()
}

// Reset forgets the previous request, keeping the limits and the memory.
func (r *Request) Reset() {
	if r.limits.MaxHeadBytes == 0 {
		r.limits = r.limits.normalized()
	}
	fields := r.fields[:0]
	limits := r.limits
	*r = Request{limits: limits, fields: fields, contentLength: -1}
}

// Limits returns the limits in force.
func (r *Request) Limits() Limits { return r.limits }

// Done reports whether a complete head has been parsed.
func (r *Request) Done() bool { return r.state == stDone }

// HeadLen returns the length of the parsed head, blank line included: the
// offset in the input of the first byte that follows the head. It is zero
// until the head is complete.
func (r *Request) HeadLen() int { return r.headLen }

func (r *Request) view(s span) []byte {
	if s.end == 0 {
		return nil
	}
	return r.buf[s.off:s.end:s.end]
}

// Method returns the request method, such as "GET".
func (r *Request) Method() []byte { return r.view(r.method) }

// Target returns the request-target exactly as sent.
func (r *Request) Target() []byte { return r.view(r.target) }

// Path returns the path of the request-target: for origin-form the part
// before '?', for absolute-form the part after the authority ("" when the
// target has none), for authority-form and asterisk-form "".
func (r *Request) Path() []byte { return r.view(r.path) }

// Query returns the query of the request-target without the '?', or nil.
func (r *Request) Query() []byte { return r.view(r.query) }

// Version returns the HTTP version as sent, "HTTP/1.1" or "HTTP/1.0".
func (r *Request) Version() []byte { return r.view(r.version) }

// Minor returns the minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
func (r *Request) Minor() int { return r.minor }

// NumFields returns the number of header field lines.
func (r *Request) NumFields() int { return len(r.fields) }

// Field returns the name and value (without surrounding whitespace) of the
// i-th header field line, in the order received.
func (r *Request) Field(i int) (name, value []byte) {
	f := &r.fields[i]
	return r.view(f.name), r.valueView(f.value)
}

// FieldID returns the recognised identity of the i-th header field line.
func (r *Request) FieldID(i int) FieldID { return r.fields[i].id }

// valueView returns a field value; an empty value is an empty, non-nil slice.
func (r *Request) valueView(s span) []byte { return r.buf[s.off:s.end:s.end] }

// Get returns the value of the first field named name (compared without
// regard to case), or nil when there is none.
func (r *Request) Get(name string) []byte {
	for i := range r.fields {
		f := &r.fields[i]
		if equalFold(r.view(f.name), name) {
			return r.valueView(f.value)
		}
	}
	return nil
}

// Value returns the value of the first field with a recognised id, or nil.
func (r *Request) Value(id FieldID) []byte {
	i := r.first[id]
	if i == 0 {
		return nil
	}
	return r.valueView(r.fields[i-1].value)
}

// Count returns how many field lines carry a recognised id (saturating at 255).
func (r *Request) Count(id FieldID) int { return int(r.count[id]) }

// Host returns the Host header value, or nil when absent.
func (r *Request) Host() []byte { return r.Value(FieldHost) }

// Origin returns the Origin header value, or nil when absent.
func (r *Request) Origin() []byte { return r.Value(FieldOrigin) }

// XForwardedFor returns the first X-Forwarded-For line, or nil.
func (r *Request) XForwardedFor() []byte { return r.Value(FieldXForwardedFor) }

// ContentLength returns the declared body length, or -1 when none was sent.
func (r *Request) ContentLength() int64 { return r.contentLength }

// Chunked reports whether the body uses the chunked transfer coding.
func (r *Request) Chunked() bool { return r.count[FieldTransferEncoding] != 0 }

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.contentLength > 0 || r.Chunked() }

// KeepAlive reports whether the connection persists after the response
// (RFC 9112 §9.3): HTTP/1.1 unless "close" is listed in Connection,
// HTTP/1.0 only when "keep-alive" is.
func (r *Request) KeepAlive() bool {
	if r.minor == 0 {
		return r.ConnectionHas("keep-alive")
	}
	return !r.ConnectionHas("close")
}

// ConnectionHas reports whether option (lower case) is listed in any
// Connection field line, compared without regard to case.
func (r *Request) ConnectionHas(option string) bool {
	it := r.List(FieldConnection)
	for it.Next() {
		if equalFold(it.Elem(), option) {
			return true
		}
	}
	return false
}
