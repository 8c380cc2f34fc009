package parser_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// frame is a masked WebSocket text frame holding "Hello" (RFC 6455 §5.7):
// the first bytes a client may send right after its handshake.
const frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

// splitCase is a request fed to the parser in every possible way.
type splitCase struct {
	name   string
	limits parser.Limits
	in     string
}

func splitCases() []splitCase {
	var zero parser.Limits
	small := parser.Limits{MaxHeadBytes: 64}
	three := parser.Limits{MaxFields: 3}
	long := strings.Repeat("abcdefg ", 40)
	return []splitCase{
		// Accepted heads.
		{"simple GET", zero, mkGet()},
		{"websocket handshake", zero, wsGet("Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
			"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15; server_no_context_takeover, x; a=\"1\"")},
		{"websocket then frames", zero, wsGet() + frame + frame},
		{"pipelined request", zero, mkGet() + mkReq("GET /next HTTP/1.1", "Host: h")},
		{"leading empty lines", zero, "\r\n\r\n" + mkGet()},
		{"absolute-form", zero, mkReq("GET http://example.com/p?q=1 HTTP/1.1", "Host: example.com")},
		{"CONNECT", zero, mkReq("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443")},
		{"OPTIONS *", zero, mkReq("OPTIONS * HTTP/1.1", "Host: h")},
		{"HTTP/1.0 keep-alive", zero, mkReq("GET /old HTTP/1.0", "Connection: keep-alive")},
		{"Content-Length and body", zero, mkGet("Content-Length: 5", "Content-Length: 5") + "hello"},
		{"chunked and body", zero, mkGet("Transfer-Encoding: Chunked") + "5\r\nhello\r\n0\r\n\r\n"},
		{"OWS, obs-text, empty values", zero, mkGet("X-A: \t v \t ", "X-B:", "X-C:   ", "X-D: caf\xc3\xa9 \x80", "X-E:\t\t")},
		{"long values", zero, mkGet("X-Long: "+long+"\t ", "X-Longer:"+long+long+"z", "X-Spaces: a"+strings.Repeat(" ", 70)+"b")},
		{"long target", zero, mkReq("GET /"+strings.Repeat("seg/", 50)+"?q="+strings.Repeat("x", 30)+" HTTP/1.1", "Host: h")},
		{"RFC upgrade list", zero, mkGet("Connection: keep-alive", "Upgrade: HTTP/2.0, SHTTP/1.3", "Connection: Upgrade", "Upgrade: IRC/6.9, RTA/x11")},
		{"websocket POST", zero, wsReq("POST /chat HTTP/1.1", "Sec-WebSocket-Key: "+sampleKey, "Sec-WebSocket-Version: 13")},
		{"websocket version 8", zero, wsReq("GET /chat HTTP/1.1", "Sec-WebSocket-Key: "+sampleKey, "Sec-WebSocket-Version: 8")},
		{"websocket without key", zero, wsReq("GET /chat HTTP/1.1", "Sec-WebSocket-Version: 13")},
		{"websocket with body", zero, wsGet("Content-Length: 5") + "hello"},
		{"websocket bad extensions", zero, wsGet("Sec-WebSocket-Extensions: x; a=")},
		{"exactly at the limit", small, sized(64) + frame},
		{"exactly MaxFields", three, manyFields(3)},

		// Rejected heads, one per error.
		{"ErrBadRequestLine", zero, mkReq("GET / HTTP/1.1 x", "Host: h")},
		{"ErrBadMethod", zero, mkReq("GE(T / HTTP/1.1", "Host: h")},
		{"ErrBadTarget", zero, mkReq("GET /%zz HTTP/1.1", "Host: h")},
		{"ErrBadTarget asterisk", zero, mkReq("GET * HTTP/1.1", "Host: h")},
		{"ErrBadVersion", zero, mkReq("GET / HTTP/1.10", "Host: h")},
		{"ErrVersion", zero, mkReq("GET / HTTP/2.0", "Host: h")},
		{"ErrHTTP2Preface", zero, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"ErrBareLF", zero, "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"},
		{"ErrBareLF leading", zero, "\r\n\n" + mkGet()},
		{"ErrBareCR", zero, "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"},
		{"ErrBadFieldName", zero, mkGet("X(Y: z")},
		{"ErrSpaceBeforeColon", zero, mkGet("X-Y : z")},
		{"ErrObsFold", zero, mkGet("X-Y: z", " folded")},
		{"ErrBadFieldValue", zero, mkGet("X-Y: " + long + "\x7f")},
		{"ErrMissingHost", zero, mkReq("GET / HTTP/1.1", "X: y")},
		{"ErrDuplicateHost", zero, mkGet("host: other")},
		{"ErrBadHost", zero, mkReq("GET / HTTP/1.1", "Host: a b")},
		{"ErrBadContentLength", zero, mkGet("Content-Length: 5", "Content-Length: 6")},
		{"ErrLengthAndChunked", zero, mkGet("Content-Length: 5", "Transfer-Encoding: chunked") + "hello"},
		{"ErrBadTE", zero, mkReq("POST / HTTP/1.0", "Transfer-Encoding: chunked")},
		{"ErrUnsupportedTE", zero, mkGet("Transfer-Encoding: gzip, chunked")},
		{"ErrURITooLong", small, mkReq("GET /"+strings.Repeat("a", 100)+" HTTP/1.1", "Host: h")},
		{"ErrHeadTooLarge", small, sized(65)},
		{"ErrHeadTooLarge with frames", small, sized(65) + frame},
		{"ErrTooManyFields", three, manyFields(4)},
	}
}

// Protocols and subprotocols the split tests negotiate with.
var (
	splitProtocols    = []parser.Protocol{parser.WebSocket(), irc, rta}
	splitSubprotocols = []string{"superchat", "chat"}
)

// outcome is everything observable about a request after Parse.
type outcome struct {
	n       int
	err     error
	done    bool
	headLen int
	view    string // the accessors and negotiation results, on success
}

func observe(r *parser.Request, n int, err error) outcome {
	o := outcome{n: n, err: err, done: r.Done(), headLen: r.HeadLen()}
	if err != nil {
		return o
	}
	var b strings.Builder
	fmt.Fprintf(&b, "line %q %q %q %q %q %d\n", r.Method(), r.Target(), r.Path(), show(r.Query()), r.Version(), r.Minor())
	for i := 0; i < r.NumFields(); i++ {
		name, value := r.Field(i)
		fmt.Fprintf(&b, "field %q %q %d\n", name, value, r.FieldID(i))
	}
	fmt.Fprintf(&b, "host %q get %q cl %d chunked %v body %v keep %v wants %v\n",
		show(r.Host()), show(r.Get("x-a")), r.ContentLength(), r.Chunked(), r.HasBody(), r.KeepAlive(), r.WantsUpgrade())
	idx, ver := r.SelectUpgrade(splitProtocols)
	fmt.Fprintf(&b, "upgrade %d %q\n", idx, show(ver))
	var accept [parser.AcceptLen]byte
	werr := r.CheckWebSocket(&accept)
	fmt.Fprintf(&b, "websocket %v %q\n", werr, accept[:])
	sub, serr := r.SelectSubprotocol(splitSubprotocols)
	fmt.Fprintf(&b, "subprotocol %q %v\n", show(sub), serr)
	ext, eerr := offers(r)
	fmt.Fprintf(&b, "extensions %q %v\n", ext, eerr)
	o.view = b.String()
	return o
}

// exact returns a fresh copy of s whose capacity is its length, so that a
// read past it panics.
func exact(s string) []byte {
	b := make([]byte, len(s))
	copy(b, s)
	return b
}

// scribble overwrites a buffer the parser must no longer use.
func scribble(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

func parseWhole(c splitCase) outcome {
	r := parser.NewRequest(c.limits)
	n, err := r.Parse(exact(c.in))
	return observe(r, n, err)
}

func TestSplitEveryPoint(t *testing.T) {
	for i, c := range splitCases() {
		want := parseWhole(c)
		if want.err == parser.ErrNeedMore {
			t.Errorf("#%d %s: whole input gives ErrNeedMore", i, c.name)
			continue
		}
		for _, moved := range []bool{false, true} {
			whole := exact(c.in)
			for k := 0; k <= len(c.in); k++ {
				r := parser.NewRequest(c.limits)
				first := whole[:k:k]
				if moved {
					first = exact(c.in[:k])
				}
				n, err := r.Parse(first)
				if err == parser.ErrNeedMore {
					if n != 0 {
						t.Errorf("#%d %s: split %d moved %v: ErrNeedMore with n=%d", i, c.name, k, moved, n)
					}
					if want.err == nil && k >= want.n {
						t.Errorf("#%d %s: split %d moved %v: ErrNeedMore with the whole head given", i, c.name, k, moved)
					}
				} else if n != want.n || err != want.err {
					t.Errorf("#%d %s: split %d moved %v: first call got (%d, %v); want ErrNeedMore or (%d, %v)",
						i, c.name, k, moved, n, err, want.n, want.err)
				}
				second := whole
				if moved {
					scribble(first)
					second = exact(c.in)
				}
				n, err = r.Parse(second)
				if got := observe(r, n, err); got != want {
					t.Errorf("#%d %s: split %d moved %v:\ngot  %+v\nwant %+v", i, c.name, k, moved, got, want)
					break
				}
			}
		}
	}
}

// TestSplitTrickle feeds each request a few bytes at a time, the buffer
// growing in place or moving at every call.
func TestSplitTrickle(t *testing.T) {
	for i, c := range splitCases() {
		want := parseWhole(c)
		for _, step := range []int{1, 3, 7, 8, 9, 16} {
			for _, moved := range []bool{false, true} {
				r := parser.NewRequest(c.limits)
				whole := exact(c.in)
				var buf []byte
				n, err := 0, parser.ErrNeedMore
				prev, k := 0, 0
				for err == parser.ErrNeedMore && k < len(c.in) {
					prev, k = k, min(k+step, len(c.in))
					if moved {
						scribble(buf)
						buf = exact(c.in[:k])
					} else {
						buf = whole[:k:k]
					}
					n, err = r.Parse(buf)
				}
				// A head completes when its last byte arrives.
				if want.err == nil && (err != nil || prev >= want.n || k < want.n) {
					t.Errorf("#%d %s: step %d moved %v: got (%d, %v) at %d bytes; want (%d, nil) at %d",
						i, c.name, step, moved, n, err, k, want.n, want.n)
				}
				if moved {
					scribble(buf)
					buf = exact(c.in)
				} else {
					buf = whole
				}
				n, err = r.Parse(buf)
				if got := observe(r, n, err); got != want {
					t.Errorf("#%d %s: step %d moved %v:\ngot  %+v\nwant %+v", i, c.name, step, moved, got, want)
				}
			}
		}
	}
}

func TestLimits(t *testing.T) {
	const small = 64
	longLine := "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	frames := strings.Repeat("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 100_000)
	tests := []struct {
		name   string
		limits parser.Limits
		in     string
		n      int
		err    error
		status int
	}{
		{"default: exactly at the limit", parser.Limits{}, sized(8192), 8192, nil, 0},
		{"default: one byte over", parser.Limits{}, sized(8193), 0, parser.ErrHeadTooLarge, 431},
		{"default: request line over", parser.Limits{}, "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", 0, parser.ErrURITooLong, 414},
		// Empty lines before the request line count as part of it.
		{"default: empty lines over", parser.Limits{}, strings.Repeat("\r\n", 5000), 0, parser.ErrURITooLong, 414},
		{"small: exactly at the limit", parser.Limits{MaxHeadBytes: small}, sized(small), small, nil, 0},
		{"small: one byte over", parser.Limits{MaxHeadBytes: small}, sized(small + 1), 0, parser.ErrHeadTooLarge, 431},
		{"small: request line over", parser.Limits{MaxHeadBytes: small}, longLine, 0, parser.ErrURITooLong, 414},
		{"small: at the limit in a large buffer", parser.Limits{MaxHeadBytes: small}, sized(small) + frames, small, nil, 0},
		{"small: over in a large buffer", parser.Limits{MaxHeadBytes: small}, sized(small+1) + frames, 0, parser.ErrHeadTooLarge, 431},
		{"small: request line over in a large buffer", parser.Limits{MaxHeadBytes: small}, longLine + frames, 0, parser.ErrURITooLong, 414},
		{"default: over in a large buffer", parser.Limits{}, sized(8193) + frames, 0, parser.ErrHeadTooLarge, 431},
		{"default: never-ending field in a large buffer", parser.Limits{}, "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 1<<20), 0, parser.ErrHeadTooLarge, 431},
		{"3 fields of 3", parser.Limits{MaxFields: 3}, manyFields(3), len(manyFields(3)), nil, 0},
		{"4 fields of 3", parser.Limits{MaxFields: 3}, manyFields(4), 0, parser.ErrTooManyFields, 431},
		{"default: 100 fields", parser.Limits{}, manyFields(100), len(manyFields(100)), nil, 0},
		{"default: 101 fields", parser.Limits{}, manyFields(101), 0, parser.ErrTooManyFields, 431},
		{"101 fields in a large buffer", parser.Limits{}, manyFields(101) + frames, 0, parser.ErrTooManyFields, 431},
	}
	for i, tt := range tests {
		_, n, err := parseStr(tt.in, tt.limits)
		if n != tt.n || err != tt.err || statusOf(err) != tt.status {
			t.Errorf("#%d %s: got (%d, %v, %d); want (%d, %v, %d)", i, tt.name, n, err, statusOf(err), tt.n, tt.err, tt.status)
		}
	}
}

func TestLimitsNormalized(t *testing.T) {
	tests := []struct {
		name string
		in   parser.Limits
		want parser.Limits
	}{
		{"zero", parser.Limits{}, parser.Limits{MaxHeadBytes: parser.DefaultMaxHeadBytes, MaxFields: parser.DefaultMaxFields}},
		{"negative", parser.Limits{MaxHeadBytes: -1, MaxFields: -1}, parser.Limits{MaxHeadBytes: 8192, MaxFields: 100}},
		{"custom", parser.Limits{MaxHeadBytes: 100, MaxFields: 3}, parser.Limits{MaxHeadBytes: 100, MaxFields: 3}},
		{"huge", parser.Limits{MaxHeadBytes: math.MaxInt, MaxFields: 7}, parser.Limits{MaxHeadBytes: 1 << 30, MaxFields: 7}},
	}
	for i, tt := range tests {
		if got := parser.NewRequest(tt.in).Limits(); got != tt.want {
			t.Errorf("#%d %s: got %+v; want %+v", i, tt.name, got, tt.want)
		}
	}
}

// TestLimitsTrickle feeds heads one byte at a time: the limit must be
// reached exactly when byte MaxHeadBytes+1 arrives.
func TestLimitsTrickle(t *testing.T) {
	tests := []struct {
		name   string
		limits parser.Limits
		in     string
		err    error
	}{
		{"small head", parser.Limits{MaxHeadBytes: 64}, sized(65), parser.ErrHeadTooLarge},
		{"small request line", parser.Limits{MaxHeadBytes: 64}, "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\n\r\n", parser.ErrURITooLong},
		{"default head", parser.Limits{}, sized(8193), parser.ErrHeadTooLarge},
		{"default request line", parser.Limits{}, "GET /" + strings.Repeat("a", 8200) + " HTTP/1.1\r\n\r\n", parser.ErrURITooLong},
	}
	for i, tt := range tests {
		r := parser.NewRequest(tt.limits)
		max := r.Limits().MaxHeadBytes
		for k := 1; k <= len(tt.in); k++ {
			n, err := r.Parse([]byte(tt.in[:k]))
			want := parser.ErrNeedMore
			if k > max {
				want = tt.err
			}
			if n != 0 || err != want {
				t.Errorf("#%d %s: at %d bytes got (%d, %v); want (0, %v)", i, tt.name, k, n, err, want)
				break
			}
			if k > max {
				break
			}
		}
	}
}

// TestParseRepeats checks that a completed or rejected head keeps its result
// until Reset, whatever Parse is given next.
func TestParseRepeats(t *testing.T) {
	tests := []struct {
		name string
		in   string
		more string
		n    int
		err  error
	}{
		{"complete", mkGet(), "GET /next HTTP/1.1\r\n", len(mkGet()), nil},
		{"rejected", mkGet("Host: again"), mkGet(), 0, parser.ErrDuplicateHost},
		{"rejected early", "GET / HTTP/9.9\r\n", "Host: h\r\n\r\n", 0, parser.ErrVersion},
	}
	for i, tt := range tests {
		r := parser.NewRequest(parser.Limits{})
		for k, buf := range []string{tt.in, tt.in, tt.in + tt.more, "garbage"} {
			n, err := r.Parse([]byte(buf))
			if n != tt.n || err != tt.err {
				t.Errorf("#%d %s: call %d got (%d, %v); want (%d, %v)", i, tt.name, k, n, err, tt.n, tt.err)
			}
		}
	}
}

// TestHeadLeavesFrames checks that the bytes after the head, the client's
// first WebSocket frames, are left to the caller however they arrive.
func TestHeadLeavesFrames(t *testing.T) {
	head := wsGet("Sec-WebSocket-Protocol: chat")
	tests := []struct {
		name string
		tail string
	}{
		{"one frame", frame},
		{"frames", strings.Repeat(frame, 50)},
		{"frame that looks like a request", mkGet()},
		{"CRLF", "\r\n"},
		{"LF", "\n"},
		{"NUL", "\x00"},
	}
	for i, tt := range tests {
		in := head + tt.tail
		for k := 0; k <= len(in); k++ {
			r := parser.NewRequest(parser.Limits{})
			n, err := r.Parse(exact(in[:k]))
			if err == parser.ErrNeedMore {
				n, err = r.Parse(exact(in))
			}
			if n != len(head) || err != nil || r.HeadLen() != len(head) {
				t.Errorf("#%d %s: split %d: got (%d, %v) HeadLen %d; want (%d, nil)", i, tt.name, k, n, err, r.HeadLen(), len(head))
				break
			}
		}
	}
}

// bigHead returns a valid head of about 8 KiB: a handshake, 100 padding
// lines and one long field.
func bigHead() (head string, pads, long [][2]int) {
	var b strings.Builder
	b.WriteString("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: " + sampleKey + "\r\nSec-WebSocket-Version: 13\r\n")
	for i := 0; i < 100; i++ {
		start := b.Len()
		fmt.Fprintf(&b, "X-Pad-%03d: %s\r\n", i, strings.Repeat("p", 24))
		pads = append(pads, [2]int{start, b.Len()})
	}
	b.WriteString("X-Long: ")
	start := b.Len()
	b.WriteString(strings.Repeat("value ", 700) + "end")
	long = append(long, [2]int{start, b.Len()})
	b.WriteString("\r\n\r\n")
	return b.String(), pads, long
}

// TestResumeReadsEachByteOnce proves that resuming costs O(n) in total:
// the head is fed one byte at a time and, before each call, the bytes of
// lines the parser has already read (other than a few just before the
// resume point) are overwritten with NUL. Parse documents that given bytes
// must stay unchanged, so a parser that reads any of them again sees the
// NULs and rejects the head; one that resumes where it stopped never sees
// them and accepts it.
func TestResumeReadsEachByteOnce(t *testing.T) {
	const window = 16 // bytes before the resume point a parser may look back at
	head, pads, long := bigHead()
	regions := append(pads, long...)
	buf := exact(head)
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 16 << 10, MaxFields: 200})
	n, err := 0, parser.ErrNeedMore
	poisoned := 0 // bytes below this offset have been considered
	for k := 1; k <= len(head) && err == parser.ErrNeedMore; k++ {
		for ; poisoned < k-1-window; poisoned++ {
			for _, reg := range regions {
				if poisoned >= reg[0] && poisoned < reg[1] {
					buf[poisoned] = 0
				}
			}
		}
		n, err = r.Parse(buf[:k:k])
	}
	if n != len(head) || err != nil {
		t.Fatalf("got (%d, %v); want (%d, nil): the parser read bytes again", n, err, len(head))
	}
	if got := show(r.Host()); got != "h" || r.NumFields() != 106 {
		t.Errorf("got Host %q and %d fields; want %q and 106", got, r.NumFields(), "h")
	}
}

// TestByteAtATimeAllocs checks that resuming allocates nothing.
func TestByteAtATimeAllocs(t *testing.T) {
	head, _, _ := bigHead()
	buf := exact(head)
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 16 << 10, MaxFields: 200})
	allocs := testing.AllocsPerRun(5, func() {
		r.Reset()
		for k := 1; k <= len(buf); k++ {
			if _, err := r.Parse(buf[:k]); err != parser.ErrNeedMore {
				break
			}
		}
	})
	if !r.Done() {
		t.Fatal("head not complete")
	}
	if allocs != 0 && !raceEnabled() {
		t.Errorf("got %v allocs per head; want 0", allocs)
	}
}

// BenchmarkParseWhole and BenchmarkParseByteAtATime parse the same 8 KiB
// head; their bytes/s show what resuming costs (the ratio stays constant
// as the head grows when resuming is O(n)).
func BenchmarkParseWhole(b *testing.B) {
	head, _, _ := bigHead()
	buf := exact(head)
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 16 << 10, MaxFields: 200})
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if _, err := r.Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseByteAtATime(b *testing.B) {
	head, _, _ := bigHead()
	buf := exact(head)
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 16 << 10, MaxFields: 200})
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		for k := 1; k <= len(buf); k++ {
			if _, err := r.Parse(buf[:k]); err != parser.ErrNeedMore {
				break
			}
		}
	}
}
