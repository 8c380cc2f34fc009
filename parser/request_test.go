package parser_test

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// mkReq builds a request head: the request line, each field line and the
// blank line, every line ending in CRLF.
func mkReq(line string, fields ...string) string {
	var b strings.Builder
	b.WriteString(line)
	b.WriteString("\r\n")
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// mkGet builds "GET / HTTP/1.1" with "Host: example.com" and then fields.
func mkGet(fields ...string) string {
	return mkReq("GET / HTTP/1.1", append([]string{"Host: example.com"}, fields...)...)
}

// parseStr parses s in one call, with s's capacity equal to its length so
// that a read past the input panics.
func parseStr(s string, l parser.Limits) (*parser.Request, int, error) {
	r := parser.NewRequest(l)
	b := []byte(s)
	n, err := r.Parse(b[:len(b):len(b)])
	return r, n, err
}

// show renders a view, telling nil apart from empty.
func show(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

// statusOf returns the Status of a rejection, 0 for nil and -1 for an error
// that is not a *parser.Error.
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var e *parser.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -1
}

// raceEnabled reports whether the test binary was built with -race, which
// makes some allocation counts unreliable.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// sized returns a valid head of exactly n bytes: a request line, Host and a
// padding field sized to fit.
func sized(n int) string {
	const base = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n"
	return strings.Replace(base, "X-Pad: ", "X-Pad: "+strings.Repeat("a", n-len(base)), 1)
}

// rejection is a table row for a request that must be rejected.
type rejection struct {
	name   string
	in     string
	err    error
	status int
}

func checkRejections(t *testing.T, l parser.Limits, tests []rejection) {
	t.Helper()
	for i, tt := range tests {
		_, n, err := parseStr(tt.in, l)
		if n != 0 || err != tt.err || statusOf(err) != tt.status {
			t.Errorf("#%d %s: got (%d, %v, status %d); want (0, %v, status %d)", i, tt.name, n, err, statusOf(err), tt.err, tt.status)
		}
	}
}

func TestRequestLine(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		method  string
		target  string
		path    string
		query   string // "<nil>" for none
		version string
		minor   int
	}{
		{"root", mkReq("GET / HTTP/1.1", "Host: h"), "GET", "/", "/", "<nil>", "HTTP/1.1", 1},
		{"path and query", mkReq("POST /a/b?x=1&y=2 HTTP/1.1", "Host: h"), "POST", "/a/b?x=1&y=2", "/a/b", "x=1&y=2", "HTTP/1.1", 1},
		{"empty query", mkReq("GET /p? HTTP/1.1", "Host: h"), "GET", "/p?", "/p", "", "HTTP/1.1", 1},
		{"second ? in query", mkReq("GET /p?q?r HTTP/1.1", "Host: h"), "GET", "/p?q?r", "/p", "q?r", "HTTP/1.1", 1},
		{"percent escapes", mkReq("GET /%41%2f%2F?%3d HTTP/1.1", "Host: h"), "GET", "/%41%2f%2F?%3d", "/%41%2f%2F", "%3d", "HTTP/1.1", 1},
		{"every tchar in method", mkReq("X!#$%&'*+-.^_`|~09 / HTTP/1.1", "Host: h"), "X!#$%&'*+-.^_`|~09", "/", "/", "<nil>", "HTTP/1.1", 1},
		{"lower-case method is a token", mkReq("get / HTTP/1.1", "Host: h"), "get", "/", "/", "<nil>", "HTTP/1.1", 1},
		{"absolute-form", mkReq("GET http://h/p?q HTTP/1.1", "Host: h"), "GET", "http://h/p?q", "/p", "q", "HTTP/1.1", 1},
		{"absolute-form without path", mkReq("GET http://h HTTP/1.1", "Host: h"), "GET", "http://h", "", "<nil>", "HTTP/1.1", 1},
		{"absolute-form query only", mkReq("GET http://h?q HTTP/1.1", "Host: h"), "GET", "http://h?q", "", "q", "HTTP/1.1", 1},
		{"absolute-form IPv6 and port", mkReq("GET wss://[::1]:8443/chat?room=1 HTTP/1.1", "Host: h"), "GET", "wss://[::1]:8443/chat?room=1", "/chat", "room=1", "HTTP/1.1", 1},
		{"scheme characters", mkReq("GET HTTP+x-1.a://h:80/ HTTP/1.1", "Host: h"), "GET", "HTTP+x-1.a://h:80/", "/", "<nil>", "HTTP/1.1", 1},
		{"authority-form", mkReq("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"), "CONNECT", "example.com:443", "", "<nil>", "HTTP/1.1", 1},
		{"authority-form IPv6", mkReq("CONNECT [2001:db8::1]:443 HTTP/1.1", "Host: [2001:db8::1]:443"), "CONNECT", "[2001:db8::1]:443", "", "<nil>", "HTTP/1.1", 1},
		{"CONNECT with a path", mkReq("CONNECT /rpc?x HTTP/1.1", "Host: h"), "CONNECT", "/rpc?x", "/rpc", "x", "HTTP/1.1", 1},
		{"asterisk-form", mkReq("OPTIONS * HTTP/1.1", "Host: h"), "OPTIONS", "*", "", "<nil>", "HTTP/1.1", 1},
		{"OPTIONS origin-form", mkReq("OPTIONS /x HTTP/1.1", "Host: h"), "OPTIONS", "/x", "/x", "<nil>", "HTTP/1.1", 1},
		{"HTTP/1.0", mkReq("GET /old HTTP/1.0"), "GET", "/old", "/old", "<nil>", "HTTP/1.0", 0},
		{"leading empty lines", "\r\n\r\n" + mkReq("GET / HTTP/1.1", "Host: h"), "GET", "/", "/", "<nil>", "HTTP/1.1", 1},
	}
	for i, tt := range tests {
		r, n, err := parseStr(tt.in, parser.Limits{})
		if err != nil || n != len(tt.in) {
			t.Errorf("#%d %s: got (%d, %v); want (%d, nil)", i, tt.name, n, err, len(tt.in))
			continue
		}
		got := []string{string(r.Method()), string(r.Target()), string(r.Path()), show(r.Query()), string(r.Version())}
		want := []string{tt.method, tt.target, tt.path, tt.query, tt.version}
		if strings.Join(got, " | ") != strings.Join(want, " | ") {
			t.Errorf("#%d %s: got %q; want %q", i, tt.name, got, want)
		}
		if r.Minor() != tt.minor {
			t.Errorf("#%d %s: got minor %d; want %d", i, tt.name, r.Minor(), tt.minor)
		}
		if !r.Done() || r.HeadLen() != n {
			t.Errorf("#%d %s: got Done %v HeadLen %d; want true %d", i, tt.name, r.Done(), r.HeadLen(), n)
		}
	}
}

func TestRequestLineErrors(t *testing.T) {
	tail := "\r\nHost: h\r\n\r\n"
	checkRejections(t, parser.Limits{}, []rejection{
		// Methods.
		{"empty method", " / HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"paren in method", "GE(T / HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"quote in method", "GE\"T / HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"non-ASCII method", "G\xc3\x89T / HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"NUL in method", "G\x00T / HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"tab after method", "GET\t/ HTTP/1.1" + tail, parser.ErrBadMethod, 400},
		{"method then CRLF", "GET\r\n" + tail, parser.ErrBadMethod, 400},
		{"method then LF", "GET\n" + tail, parser.ErrBadMethod, 400},

		// Targets.
		{"double space before target", "GET  / HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"tab after target", "GET /\tHTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"asterisk-form for GET", "GET * HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"asterisk-form for CONNECT", "CONNECT * HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form for GET", "GET example.com:443 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form with path", "CONNECT example.com:443/p HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form with userinfo", "CONNECT u@example.com:443 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form without port", "CONNECT example.com HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form with empty port", "CONNECT example.com: HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"authority-form without host", "CONNECT :443 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"fragment", "GET /a#b HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"fragment in absolute-form", "GET http://h/a#b HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"userinfo in absolute-form", "GET http://u@h/ HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		// RFC 9110 §4.2.1: an http URI with an empty host is invalid.
		{"absolute-form without host", "GET http:///p HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"absolute-form with port only", "GET http://:80/p HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"relative path", "GET index.html HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"lone percent", "GET /% HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"short escape", "GET /%4 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"non-hex escape", "GET /%4g HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"non-hex first digit", "GET /%g4 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"bad escape in query", "GET /p?a=%zz HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"bad escape in absolute-form", "GET http://h/%zz HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"obs-text target", "GET /\x80 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"NUL in target", "GET /\x00 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"CTL in target", "GET /\x01 HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"DEL in target", "GET /\x7f HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"scheme without //", "GET http:/h HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"scheme starting with a digit", "GET 1http://h/ HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		{"bad authority character", "GET http://h^/ HTTP/1.1" + tail, parser.ErrBadTarget, 400},
		// A request line without a version (HTTP/0.9) ends in the target.
		{"no version", "GET /" + tail, parser.ErrBadTarget, 400},
		{"no version, bare LF", "GET /\nHost: h\r\n\r\n", parser.ErrBadTarget, 400},

		// Versions.
		{"HTTP/1.2", "GET / HTTP/1.2" + tail, parser.ErrVersion, 505},
		{"HTTP/2.0", "GET / HTTP/2.0" + tail, parser.ErrVersion, 505},
		{"HTTP/0.9", "GET / HTTP/0.9" + tail, parser.ErrVersion, 505},
		{"HTTP/3.0", "GET / HTTP/3.0" + tail, parser.ErrVersion, 505},
		{"HTTP/9.9", "GET / HTTP/9.9" + tail, parser.ErrVersion, 505},
		{"HTTP/1", "GET / HTTP/1" + tail, parser.ErrBadVersion, 400},
		{"lower-case name", "GET / http/1.1" + tail, parser.ErrBadVersion, 400},
		{"two-digit minor", "GET / HTTP/1.10" + tail, parser.ErrBadVersion, 400},
		{"no dot", "GET / HTTP/11" + tail, parser.ErrBadVersion, 400},
		{"letter minor", "GET / HTTP/1.a" + tail, parser.ErrBadVersion, 400},
		{"letter major", "GET / HTTP/a.1" + tail, parser.ErrBadVersion, 400},
		{"dash", "GET / HTTP-1.1" + tail, parser.ErrBadVersion, 400},
		{"HTTPS", "GET / HTTPS/1.1" + tail, parser.ErrBadVersion, 400},
		{"empty version", "GET / " + tail, parser.ErrBadVersion, 400},
		{"double space before version", "GET /  HTTP/1.1" + tail, parser.ErrBadRequestLine, 400},
		{"trailing space", "GET / HTTP/1.1 " + tail, parser.ErrBadRequestLine, 400},
		{"trailing tab", "GET / HTTP/1.1\t" + tail, parser.ErrBadRequestLine, 400},
		{"extra word", "GET / HTTP/1.1 x" + tail, parser.ErrBadRequestLine, 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", parser.ErrHTTP2Preface, 505},

		// Line endings.
		{"leading bare LF", "\nGET / HTTP/1.1" + tail, parser.ErrBareLF, 400},
		{"bare LF after empty line", "\r\n\nGET / HTTP/1.1" + tail, parser.ErrBareLF, 400},
		{"request line ends in LF", "GET / HTTP/1.1\nHost: h\r\n\r\n", parser.ErrBareLF, 400},
		{"field line ends in LF", "GET / HTTP/1.1\r\nHost: h\n\r\n", parser.ErrBareLF, 400},
		{"empty value ends in LF", "GET / HTTP/1.1\r\nHost:\n\r\n", parser.ErrBareLF, 400},
		{"blank line is LF", "GET / HTTP/1.1\r\nHost: h\r\n\n", parser.ErrBareLF, 400},
		{"all LF", "GET / HTTP/1.1\nHost: h\n\n", parser.ErrBareLF, 400},
		{"leading bare CR", "\rGET / HTTP/1.1" + tail, parser.ErrBareCR, 400},
		{"CR CR", "\r\rGET / HTTP/1.1" + tail, parser.ErrBareCR, 400},
		{"request line CR then text", "GET / HTTP/1.1\rHost: h\r\n\r\n", parser.ErrBareCR, 400},
		{"request line CR CR LF", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", parser.ErrBareCR, 400},
		{"CR inside a value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", parser.ErrBareCR, 400},
		{"blank line CR then text", "GET / HTTP/1.1\r\nHost: h\r\n\rX", parser.ErrBareCR, 400},
	})
}

func TestFields(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []string // "name|value"
	}{
		{"name case variations", mkReq("GET / HTTP/1.1", "hOsT: h", "CONNECTION: close", "x-lower: a", "X-UPPER: b"),
			[]string{"hOsT|h", "CONNECTION|close", "x-lower|a", "X-UPPER|b"}},
		{"every tchar in a name", mkGet("X!#$%&'*+-.^_`|~09: v"),
			[]string{"Host|example.com", "X!#$%&'*+-.^_`|~09|v"}},
		{"empty values", mkGet("X-A:", "X-B:   ", "X-C:\t", "X-D: \t "),
			[]string{"Host|example.com", "X-A|", "X-B|", "X-C|", "X-D|"}},
		{"OWS trimmed on both sides", mkGet("X-A: \t v \t ", "X-B:v", "X-C:\tv", "X-D:  a  b\t c  "),
			[]string{"Host|example.com", "X-A|v", "X-B|v", "X-C|v", "X-D|a  b\t c"}},
		{"obs-text accepted", mkGet("X-A: caf\xc3\xa9", "X-B: \x80\xff", "X-C: \xff"),
			[]string{"Host|example.com", "X-A|caf\xc3\xa9", "X-B|\x80\xff", "X-C|\xff"}},
		{"delimiters in values", mkGet(`X-A: "a, b"; c=d (e) <f> {g} [h] \i`),
			[]string{"Host|example.com", `X-A|"a, b"; c=d (e) <f> {g} [h] \i`}},
		{"empty Host", mkReq("GET / HTTP/1.1", "Host:"), []string{"Host|"}},
		{"Host with port", mkReq("GET / HTTP/1.1", "Host: example.com:8080"), []string{"Host|example.com:8080"}},
		{"IPv6 Host with port", mkReq("GET / HTTP/1.1", "Host: [2001:db8::1]:8080"), []string{"Host|[2001:db8::1]:8080"}},
		{"Host sub-delims", mkReq("GET / HTTP/1.1", "Host: a-b.c_d~e!$&'()*+,;=:1"), []string{"Host|a-b.c_d~e!$&'()*+,;=:1"}},
		{"no Host on HTTP/1.0", mkReq("GET / HTTP/1.0", "X: y"), []string{"X|y"}},
		{"no fields on HTTP/1.0", mkReq("GET / HTTP/1.0"), nil},
	}
	for i, tt := range tests {
		r, n, err := parseStr(tt.in, parser.Limits{})
		if err != nil || n != len(tt.in) {
			t.Errorf("#%d %s: got (%d, %v); want (%d, nil)", i, tt.name, n, err, len(tt.in))
			continue
		}
		var got []string
		for k := 0; k < r.NumFields(); k++ {
			name, value := r.Field(k)
			if value == nil {
				t.Errorf("#%d %s: field %d has a nil value; want non-nil", i, tt.name, k)
			}
			got = append(got, string(name)+"|"+string(value))
		}
		if strings.Join(got, "\n") != strings.Join(tt.fields, "\n") {
			t.Errorf("#%d %s: got %q; want %q", i, tt.name, got, tt.fields)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	checkRejections(t, parser.Limits{}, []rejection{
		{"space before colon", mkReq("GET / HTTP/1.1", "Host : h"), parser.ErrSpaceBeforeColon, 400},
		{"tab before colon", mkReq("GET / HTTP/1.1", "Host\t: h"), parser.ErrSpaceBeforeColon, 400},
		{"spaces before colon", mkGet("X-A  : v"), parser.ErrSpaceBeforeColon, 400},
		{"space inside a name", mkGet("X A: v"), parser.ErrSpaceBeforeColon, 400},
		{"empty name", mkGet(": v"), parser.ErrBadFieldName, 400},
		{"paren in name", mkGet("X(A: v"), parser.ErrBadFieldName, 400},
		{"no colon", mkGet("X-A"), parser.ErrBadFieldName, 400},
		{"non-ASCII name", mkGet("X-\xc3\x89: v"), parser.ErrBadFieldName, 400},
		{"NUL in name", mkGet("X\x00: v"), parser.ErrBadFieldName, 400},
		{"obs-fold with space", mkGet("X-A: a", " b"), parser.ErrObsFold, 400},
		{"obs-fold with tab", mkGet("X-A: a", "\tb"), parser.ErrObsFold, 400},
		{"space before the first field", mkReq("GET / HTTP/1.1", " Host: h"), parser.ErrObsFold, 400},
		{"tab before the first field", mkReq("GET / HTTP/1.1", "\tHost: h"), parser.ErrObsFold, 400},
		{"NUL in value", mkGet("X-A: a\x00b"), parser.ErrBadFieldValue, 400},
		{"SOH in value", mkGet("X-A: \x01"), parser.ErrBadFieldValue, 400},
		{"VT in value", mkGet("X-A: a\x0bb"), parser.ErrBadFieldValue, 400},
		{"US in value", mkGet("X-A: a\x1f"), parser.ErrBadFieldValue, 400},
		{"DEL in value", mkGet("X-A: a\x7fb"), parser.ErrBadFieldValue, 400},
		{"DEL after a long value", mkGet("X-A: " + strings.Repeat("abcdefgh", 9) + "\x7f"), parser.ErrBadFieldValue, 400},
		{"LF in value", mkGet("X-A: a\nb"), parser.ErrBareLF, 400},

		{"Host missing", mkReq("GET / HTTP/1.1", "X: y"), parser.ErrMissingHost, 400},
		{"no fields at all", mkReq("GET / HTTP/1.1"), parser.ErrMissingHost, 400},
		{"two Host lines", mkGet("Host: example.com"), parser.ErrDuplicateHost, 400},
		{"two Host lines, other case", mkReq("GET / HTTP/1.1", "host: a", "HOST: b"), parser.ErrDuplicateHost, 400},
		{"two empty Host lines", mkReq("GET / HTTP/1.1", "Host:", "Host:"), parser.ErrDuplicateHost, 400},
		{"two Host lines on HTTP/1.0", mkReq("GET / HTTP/1.0", "Host: a", "Host: a"), parser.ErrDuplicateHost, 400},
		{"space in Host", mkReq("GET / HTTP/1.1", "Host: a b"), parser.ErrBadHost, 400},
		{"userinfo in Host", mkReq("GET / HTTP/1.1", "Host: u@h"), parser.ErrBadHost, 400},
		{"path in Host", mkReq("GET / HTTP/1.1", "Host: h/p"), parser.ErrBadHost, 400},
		{"query in Host", mkReq("GET / HTTP/1.1", "Host: h?q"), parser.ErrBadHost, 400},
		{"quoted Host", mkReq("GET / HTTP/1.1", `Host: "h"`), parser.ErrBadHost, 400},
		{"obs-text in Host", mkReq("GET / HTTP/1.1", "Host: h\x80"), parser.ErrBadHost, 400},
		{"percent-encoding in Host", mkReq("GET / HTTP/1.1", "Host: h%41"), parser.ErrBadHost, 400},
		{"letter in port", mkReq("GET / HTTP/1.1", "Host: h:8x"), parser.ErrBadHost, 400},
		{"two ports", mkReq("GET / HTTP/1.1", "Host: h:80:80"), parser.ErrBadHost, 400},
		{"unbracketed IPv6", mkReq("GET / HTTP/1.1", "Host: ::1"), parser.ErrBadHost, 400},
		{"unclosed IPv6", mkReq("GET / HTTP/1.1", "Host: [::1"), parser.ErrBadHost, 400},
		{"non-hex IPv6", mkReq("GET / HTTP/1.1", "Host: [g::1]"), parser.ErrBadHost, 400},
		{"text after IPv6", mkReq("GET / HTTP/1.1", "Host: [::1]x"), parser.ErrBadHost, 400},
		{"empty IPv6", mkReq("GET / HTTP/1.1", "Host: []"), parser.ErrBadHost, 400},

		{"Content-Length letters", mkGet("Content-Length: abc"), parser.ErrBadContentLength, 400},
		{"Content-Length plus sign", mkGet("Content-Length: +5"), parser.ErrBadContentLength, 400},
		{"Content-Length negative", mkGet("Content-Length: -1"), parser.ErrBadContentLength, 400},
		{"Content-Length list", mkGet("Content-Length: 5, 5"), parser.ErrBadContentLength, 400},
		{"Content-Length inner space", mkGet("Content-Length: 5 5"), parser.ErrBadContentLength, 400},
		{"Content-Length empty", mkGet("Content-Length:"), parser.ErrBadContentLength, 400},
		{"Content-Length hex", mkGet("Content-Length: 0x5"), parser.ErrBadContentLength, 400},
		{"Content-Length 19 digits", mkGet("Content-Length: 1234567890123456789"), parser.ErrBadContentLength, 400},
		{"two different Content-Length lines", mkGet("Content-Length: 5", "Content-Length: 6"), parser.ErrBadContentLength, 400},

		{"gzip, chunked", mkGet("Transfer-Encoding: gzip, chunked"), parser.ErrUnsupportedTE, 501},
		{"gzip", mkGet("Transfer-Encoding: gzip"), parser.ErrUnsupportedTE, 501},
		{"identity", mkGet("Transfer-Encoding: identity"), parser.ErrUnsupportedTE, 501},
		{"chunked, chunked", mkGet("Transfer-Encoding: chunked, chunked"), parser.ErrUnsupportedTE, 501},
		{"empty Transfer-Encoding", mkGet("Transfer-Encoding:"), parser.ErrUnsupportedTE, 501},
		{"two Transfer-Encoding lines", mkGet("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), parser.ErrBadTE, 400},
		{"Transfer-Encoding on HTTP/1.0", mkReq("POST / HTTP/1.0", "Transfer-Encoding: chunked"), parser.ErrBadTE, 400},
		{"Content-Length then Transfer-Encoding", mkGet("Content-Length: 5", "Transfer-Encoding: chunked"), parser.ErrLengthAndChunked, 400},
		{"Transfer-Encoding then Content-Length", mkGet("Transfer-Encoding: chunked", "Content-Length: 5"), parser.ErrLengthAndChunked, 400},
		{"Content-Length 0 and Transfer-Encoding", mkGet("Content-Length: 0", "transfer-encoding: CHUNKED"), parser.ErrLengthAndChunked, 400},
	})
}

func TestFieldIDs(t *testing.T) {
	tests := []struct {
		name string
		id   parser.FieldID
	}{
		{"Connection", parser.FieldConnection},
		{"UPGRADE", parser.FieldUpgrade},
		{"content-length", parser.FieldContentLength},
		{"Origin", parser.FieldOrigin},
		{"X-Forwarded-For", parser.FieldXForwardedFor},
		{"sec-websocket-key", parser.FieldSecWebSocketKey},
		{"Sec-WebSocket-Version", parser.FieldSecWebSocketVersion},
		{"SEC-WEBSOCKET-PROTOCOL", parser.FieldSecWebSocketProtocol},
		{"Sec-Websocket-Extensions", parser.FieldSecWebSocketExtensions},
		{"Hosts", parser.FieldOther},
		{"Connectio", parser.FieldOther},
		{"Sec-WebSocket-Keys", parser.FieldOther},
		{"X-Forwarded_For", parser.FieldOther},
	}
	for i, tt := range tests {
		r, _, err := parseStr(mkGet(tt.name+": 7", tt.name+": 7"), parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		if got := r.FieldID(1); got != tt.id {
			t.Errorf("#%d %s: got id %d; want %d", i, tt.name, got, tt.id)
		}
		if r.FieldID(0) != parser.FieldHost {
			t.Errorf("#%d %s: got id %d for Host; want %d", i, tt.name, r.FieldID(0), parser.FieldHost)
		}
		if tt.id == parser.FieldOther {
			continue
		}
		if got := show(r.Value(tt.id)); got != "7" {
			t.Errorf("#%d %s: got Value %q; want %q", i, tt.name, got, "7")
		}
		if got := r.Count(tt.id); got != 2 {
			t.Errorf("#%d %s: got Count %d; want 2", i, tt.name, got)
		}
	}
}

func TestBodyFraming(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		length  int64
		chunked bool
		hasBody bool
	}{
		{"no body", mkGet(), -1, false, false},
		{"Content-Length 0", mkGet("Content-Length: 0"), 0, false, false},
		{"Content-Length 5", mkGet("Content-Length: 5"), 5, false, true},
		{"Content-Length with OWS", mkGet("Content-Length:  5 \t"), 5, false, true},
		{"leading zeros", mkGet("Content-Length: 007"), 7, false, true},
		{"18 digits", mkGet("Content-Length: 999999999999999999"), 999999999999999999, false, true},
		{"two equal lines", mkGet("Content-Length: 5", "content-length: 5"), 5, false, true},
		{"chunked", mkGet("Transfer-Encoding: chunked"), -1, true, true},
		{"CHUNKED", mkGet("transfer-encoding: CHUNKED"), -1, true, true},
		{"Chunked with OWS", mkGet("Transfer-Encoding: \tChunked "), -1, true, true},
		{"HTTP/1.0 Content-Length", mkReq("POST / HTTP/1.0", "Content-Length: 3"), 3, false, true},
	}
	for i, tt := range tests {
		r, _, err := parseStr(tt.in, parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		if r.ContentLength() != tt.length || r.Chunked() != tt.chunked || r.HasBody() != tt.hasBody {
			t.Errorf("#%d %s: got (%d, %v, %v); want (%d, %v, %v)", i, tt.name,
				r.ContentLength(), r.Chunked(), r.HasBody(), tt.length, tt.chunked, tt.hasBody)
		}
	}
}

func TestAccessors(t *testing.T) {
	in := mkReq("GET /chat?x=1 HTTP/1.1",
		"host: example.com",
		"X-Empty:",
		"Origin: https://app.example.com",
		"X-Forwarded-For: 192.0.2.1",
		"x-forwarded-for: 192.0.2.2",
		"Accept: a",
		"ACCEPT: b",
	)
	r, n, err := parseStr(in, parser.Limits{})
	if err != nil || n != len(in) {
		t.Fatalf("got (%d, %v); want (%d, nil)", n, err, len(in))
	}
	name5, value5 := r.Field(5)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"Get is case-insensitive", show(r.Get("HOST")), "example.com"},
		{"Get returns the first line", show(r.Get("accept")), "a"},
		{"Get of an absent name", show(r.Get("Cookie")), "<nil>"},
		{"Get of an empty value", show(r.Get("x-empty")), ""},
		{"Get of a prefix", show(r.Get("X-Empt")), "<nil>"},
		{"Host", show(r.Host()), "example.com"},
		{"Origin", show(r.Origin()), "https://app.example.com"},
		{"XForwardedFor is the first line", show(r.XForwardedFor()), "192.0.2.1"},
		{"Value", show(r.Value(parser.FieldXForwardedFor)), "192.0.2.1"},
		{"Value of an absent id", show(r.Value(parser.FieldUpgrade)), "<nil>"},
		{"Field name", string(name5), "Accept"},
		{"Field value", string(value5), "a"},
		{"Method", show(r.Method()), "GET"},
		{"Target", show(r.Target()), "/chat?x=1"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("#%d %s: got %q; want %q", i, tt.name, tt.got, tt.want)
		}
	}
	counts := []struct {
		name string
		got  int
		want int
	}{
		{"NumFields", r.NumFields(), 7},
		{"Count Host", r.Count(parser.FieldHost), 1},
		{"Count X-Forwarded-For", r.Count(parser.FieldXForwardedFor), 2},
		{"Count Upgrade", r.Count(parser.FieldUpgrade), 0},
		{"Count Other", r.Count(parser.FieldOther), 0},
		{"FieldID of Origin", int(r.FieldID(2)), int(parser.FieldOrigin)},
		{"FieldID of Accept", int(r.FieldID(5)), int(parser.FieldOther)},
		{"HeadLen", r.HeadLen(), len(in)},
	}
	for i, tt := range counts {
		if tt.got != tt.want {
			t.Errorf("#%d %s: got %d; want %d", i, tt.name, tt.got, tt.want)
		}
	}
}

// TestByteClasses puts each byte class at every offset of a long value and
// a long target, so that every lane of a word-at-a-time scan is covered.
func TestByteClasses(t *testing.T) {
	tests := []struct {
		name   string
		c      byte
		value  error // in a field value
		target error // in a request-target
	}{
		{"NUL", 0x00, parser.ErrBadFieldValue, parser.ErrBadTarget},
		{"SOH", 0x01, parser.ErrBadFieldValue, parser.ErrBadTarget},
		{"HTAB", '\t', nil, parser.ErrBadTarget},
		{"LF", '\n', parser.ErrBareLF, parser.ErrBadTarget},
		{"US", 0x1f, parser.ErrBadFieldValue, parser.ErrBadTarget},
		{"SP", ' ', nil, nil},
		{"!", '!', nil, nil},
		{"~", '~', nil, nil},
		{"DEL", 0x7f, parser.ErrBadFieldValue, parser.ErrBadTarget},
		{"0x80", 0x80, nil, parser.ErrBadTarget},
		{"0xFF", 0xff, nil, parser.ErrBadTarget},
	}
	for i, tt := range tests {
		for off := 0; off < 24; off++ {
			for _, after := range []string{"", " ", "\t", "a", "\x00", strings.Repeat("b", 17)} {
				v := strings.Repeat("a", off) + string(tt.c) + after
				want := tt.value
				if want == nil && strings.Contains(after, "\x00") {
					want = parser.ErrBadFieldValue
				}
				r, _, err := parseStr(mkGet("X-V: "+v), parser.Limits{})
				if err != want {
					t.Errorf("#%d %s: value %q: got %v; want %v", i, tt.name, v, err, want)
				} else if err == nil && string(r.Get("X-V")) != strings.Trim(v, " \t") {
					t.Errorf("#%d %s: value %q: got %q", i, tt.name, v, r.Get("X-V"))
				}
				if tt.c == ' ' || strings.ContainsAny(after, " \t\x00") {
					continue
				}
				target := "/" + v
				_, _, err = parseStr(mkReq("GET "+target+" HTTP/1.1", "Host: h"), parser.Limits{})
				if err != tt.target {
					t.Errorf("#%d %s: target %q: got %v; want %v", i, tt.name, target, err, tt.target)
				}
			}
		}
	}
}

// manyFields returns a head with Host and then n-1 other field lines.
func manyFields(n int) string {
	fields := []string{"Host: h"}
	for len(fields) < n {
		fields = append(fields, "X: y")
	}
	return mkReq("GET / HTTP/1.1", fields...)
}

func TestReset(t *testing.T) {
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 200, MaxFields: 4})
	first := mkReq("POST /a?b HTTP/1.1", "Host: a", "Content-Length: 5", "Connection: close")
	if n, err := r.Parse([]byte(first)); err != nil || n != len(first) {
		t.Fatalf("first: got (%d, %v)", n, err)
	}
	r.Reset()
	if r.Done() || r.HeadLen() != 0 || r.NumFields() != 0 || r.ContentLength() != -1 || r.Host() != nil || r.Method() != nil {
		t.Errorf("after Reset: Done %v HeadLen %d NumFields %d ContentLength %d Host %q Method %q; want a fresh request",
			r.Done(), r.HeadLen(), r.NumFields(), r.ContentLength(), r.Host(), r.Method())
	}
	if got, want := r.Limits(), (parser.Limits{MaxHeadBytes: 200, MaxFields: 4}); got != want {
		t.Errorf("after Reset: got limits %+v; want %+v", got, want)
	}
	second := mkReq("GET / HTTP/1.0")
	if n, err := r.Parse([]byte(second)); err != nil || n != len(second) {
		t.Errorf("second: got (%d, %v); want (%d, nil)", n, err, len(second))
	}
	if r.ContentLength() != -1 || r.KeepAlive() || r.Minor() != 0 || show(r.Query()) != "<nil>" {
		t.Errorf("second: state of the first request leaked")
	}
	// A failure is forgotten too, and the limits still hold.
	r.Reset()
	if _, err := r.Parse([]byte(manyFields(5))); err != parser.ErrTooManyFields {
		t.Errorf("third: got %v; want %v", err, parser.ErrTooManyFields)
	}
	r.Reset()
	if _, err := r.Parse([]byte(sized(201))); err != parser.ErrHeadTooLarge {
		t.Errorf("fourth: got %v; want %v", err, parser.ErrHeadTooLarge)
	}
	// The field table is reused: a warm Reset and Parse allocate nothing.
	in := []byte(manyFields(4))
	allocs := testing.AllocsPerRun(50, func() {
		r.Reset()
		r.Parse(in)
	})
	if allocs != 0 && !raceEnabled() {
		t.Errorf("Reset then Parse: got %v allocs; want 0", allocs)
	}
}

// TestZeroRequest checks that a zero Request works once Reset.
func TestZeroRequest(t *testing.T) {
	var r parser.Request
	r.Reset()
	in := mkGet()
	if n, err := r.Parse([]byte(in)); err != nil || n != len(in) {
		t.Errorf("got (%d, %v); want (%d, nil)", n, err, len(in))
	}
	if r.Limits() != (parser.Limits{MaxHeadBytes: 8192, MaxFields: 100}) || r.ContentLength() != -1 {
		t.Errorf("got limits %+v, ContentLength %d", r.Limits(), r.ContentLength())
	}
}

// TestManyFieldsRecognisedLate checks the field index bookkeeping when the
// limits allow more field lines than fit in 16 bits: a recognised field
// after line 32767 must still be found.
func TestManyFieldsRecognisedLate(t *testing.T) {
	tests := []struct {
		name  string
		other int // field lines before Host
	}{
		{"Host is line 32768", 32767},
		{"Host is line 40000", 39999},
		{"Host is line 65536", 65535},
	}
	for i, tt := range tests {
		in := "GET / HTTP/1.1\r\n" + strings.Repeat("a:\r\n", tt.other) + "Host: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
		r, n, err := parseStr(in, parser.Limits{MaxHeadBytes: 1 << 20, MaxFields: 70000})
		if err != nil || n != len(in) {
			t.Errorf("#%d %s: got (%d, %v); want (%d, nil)", i, tt.name, n, err, len(in))
			continue
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("#%d %s: panic: %v", i, tt.name, p)
				}
			}()
			if got := show(r.Host()); got != "h" {
				t.Errorf("#%d %s: got Host %q; want %q", i, tt.name, got, "h")
			}
			if got, _ := r.SelectUpgrade([]parser.Protocol{parser.WebSocket()}); got != 0 {
				t.Errorf("#%d %s: got SelectUpgrade %d; want 0", i, tt.name, got)
			}
		}()
	}
}
