package parser_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// upgradeBody is the body of every 426 from AppendUpgradeRequired.
const upgradeBody = "This resource is only reachable through a protocol upgrade.\n"

func sampleAcceptKey() *[parser.AcceptLen]byte {
	var a [parser.AcceptLen]byte
	copy(a[:], sampleAccept)
	return &a
}

// appender is one response under test: fn appends it to dst.
type appender struct {
	name string
	fn   func(dst []byte) []byte
	want string // exact bytes; "" when only parsed
	// What net/http must read back. It takes a Connection field that
	// lists "close" out of the header and sets Close instead.
	status int
	header map[string]string
	body   string
	close  bool
}

func appenders() []appender {
	acc := sampleAcceptKey()
	ws := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + sampleAccept + "\r\n"
	return []appender{
		{
			name:   "101",
			fn:     func(dst []byte) []byte { return parser.AppendSwitching(dst, acc, nil, nil) },
			want:   "HTTP/1.1 101 Switching Protocols\r\n" + ws + "\r\n",
			status: 101,
			header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-Websocket-Accept": sampleAccept, "Sec-Websocket-Protocol": ""},
		},
		{
			name:   "101 empty subprotocol and extensions",
			fn:     func(dst []byte) []byte { return parser.AppendSwitching(dst, acc, []byte{}, []byte{}) },
			want:   "HTTP/1.1 101 Switching Protocols\r\n" + ws + "\r\n",
			status: 101,
			header: map[string]string{"Sec-Websocket-Protocol": "", "Sec-Websocket-Extensions": ""},
		},
		{
			name:   "101 with subprotocol",
			fn:     func(dst []byte) []byte { return parser.AppendSwitching(dst, acc, []byte("chat"), nil) },
			want:   "HTTP/1.1 101 Switching Protocols\r\n" + ws + "Sec-WebSocket-Protocol: chat\r\n\r\n",
			status: 101,
			header: map[string]string{"Sec-Websocket-Protocol": "chat", "Sec-Websocket-Extensions": ""},
		},
		{
			name:   "101 with extensions",
			fn:     func(dst []byte) []byte { return parser.AppendSwitching(dst, acc, nil, []byte("permessage-deflate")) },
			want:   "HTTP/1.1 101 Switching Protocols\r\n" + ws + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
			status: 101,
			header: map[string]string{"Sec-Websocket-Protocol": "", "Sec-Websocket-Extensions": "permessage-deflate"},
		},
		{
			name: "101 with both",
			fn: func(dst []byte) []byte {
				return parser.AppendSwitching(dst, acc, []byte("chat"), []byte("permessage-deflate; server_no_context_takeover"))
			},
			want: "HTTP/1.1 101 Switching Protocols\r\n" + ws +
				"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n",
			status: 101,
			header: map[string]string{"Sec-Websocket-Protocol": "chat", "Sec-Websocket-Extensions": "permessage-deflate; server_no_context_takeover"},
		},
		{
			name: "426 websocket",
			fn: func(dst []byte) []byte {
				return parser.AppendUpgradeRequired(dst, []parser.Protocol{parser.WebSocket()})
			},
			want: "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 60\r\n\r\n" + upgradeBody,
			status: 426,
			header: map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"},
			body:   upgradeBody,
			close:  true,
		},
		{
			name: "426 several with versions",
			fn: func(dst []byte) []byte {
				return parser.AppendUpgradeRequired(dst, []parser.Protocol{{Name: "IRC", Version: "6.9"}, {Name: "RTA", Version: "x11"}, {Name: "foo"}})
			},
			want: "HTTP/1.1 426 Upgrade Required\r\nUpgrade: IRC/6.9, RTA/x11, foo\r\nConnection: Upgrade, close\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 60\r\n\r\n" + upgradeBody,
			status: 426,
			header: map[string]string{"Upgrade": "IRC/6.9, RTA/x11, foo", "Sec-Websocket-Version": ""},
			body:   upgradeBody,
			close:  true,
		},
		{
			name: "426 without protocols names WebSocket",
			fn:   func(dst []byte) []byte { return parser.AppendUpgradeRequired(dst, nil) },
			want: "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 60\r\n\r\n" + upgradeBody,
			status: 426,
			header: map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"},
			body:   upgradeBody,
			close:  true,
		},
		{
			name: "426 WebSocket among others",
			fn: func(dst []byte) []byte {
				return parser.AppendUpgradeRequired(dst, []parser.Protocol{{Name: "IRC", Version: "6.9"}, {Name: "WebSocket"}})
			},
			want: "HTTP/1.1 426 Upgrade Required\r\nUpgrade: IRC/6.9, WebSocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 60\r\n\r\n" + upgradeBody,
			status: 426,
			header: map[string]string{"Upgrade": "IRC/6.9, WebSocket", "Sec-Websocket-Version": "13"},
			body:   upgradeBody,
			close:  true,
		},
		{
			name: "error 400",
			fn:   func(dst []byte) []byte { return parser.AppendError(dst, parser.ErrBadRequestLine) },
			want: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\n\r\n" +
				"Malformed request line.\n",
			status: 400,
			header: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
			body:   "Malformed request line.\n",
			close:  true,
		},
		{
			name: "error 405",
			fn:   func(dst []byte) []byte { return parser.AppendError(dst, parser.ErrWebSocketMethod) },
			want: "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\n\r\n" +
				"A WebSocket handshake must use GET.\n",
			status: 405,
			header: map[string]string{"Allow": "GET"},
			body:   "A WebSocket handshake must use GET.\n",
			close:  true,
		},
		{
			name: "error 426",
			fn:   func(dst []byte) []byte { return parser.AppendError(dst, parser.ErrWebSocketVersion) },
			want: "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nConnection: Upgrade, close\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 66\r\n\r\nUnsupported Sec-WebSocket-Version; this server speaks version 13.\n",
			status: 426,
			header: map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"},
			body:   "Unsupported Sec-WebSocket-Version; this server speaks version 13.\n",
			close:  true,
		},
		{
			name: "error 431",
			fn:   func(dst []byte) []byte { return parser.AppendError(dst, parser.ErrHeadTooLarge) },
			want: "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\n\r\n" +
				"Request header fields too large.\n",
			status: 431,
			header: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
			body:   "Request header fields too large.\n",
			close:  true,
		},
		errorAppender(parser.ErrURITooLong, 414),
		errorAppender(parser.ErrVersion, 505),
		errorAppender(parser.ErrHTTP2Preface, 505),
		errorAppender(parser.ErrUnsupportedTE, 501),
		errorAppender(parser.ErrTooManyFields, 431),
		errorAppender(parser.ErrMissingWSVersion, 400),
		errorAppender(&parser.Error{Status: 418, Reason: "teapot", Body: "I am a teapot."}, 418),
		{
			name: "error without a body: the status as a sentence, never the Go reason",
			fn: func(dst []byte) []byte {
				return parser.AppendError(dst, &parser.Error{Status: 404, Reason: "x: not found"})
			},
			want:   "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nNot Found.\n",
			status: 404,
			body:   "Not Found.\n",
			close:  true,
		},
		{
			name: "error without a body, unlisted status",
			fn: func(dst []byte) []byte {
				return parser.AppendError(dst, &parser.Error{Status: 418, Reason: "x: teapot"})
			},
			want:   "HTTP/1.1 418 Status\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\r\nRequest refused.\n",
			status: 418,
			body:   "Request refused.\n",
			close:  true,
		},
		{
			name: "error with a custom header",
			fn: func(dst []byte) []byte {
				return parser.AppendError(dst, &parser.Error{Status: 503, Reason: "x: busy", Body: "busy", Header: "Retry-After: 5\r\n"})
			},
			want:   "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nbusy\n",
			status: 503,
			header: map[string]string{"Retry-After": "5"},
			body:   "busy\n",
			close:  true,
		},
		{
			name: "200 keep-alive",
			fn: func(dst []byte) []byte {
				return parser.AppendResponse(dst, 200, "X-A: 1\r\nX-B: 2\r\n", "text/plain", []byte("hello"), true)
			},
			want:   "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
			status: 200,
			header: map[string]string{"X-A": "1", "X-B": "2", "Content-Type": "text/plain", "Connection": ""},
			body:   "hello",
		},
		{
			name: "404 close",
			fn: func(dst []byte) []byte {
				return parser.AppendResponse(dst, 404, "", "text/html", []byte("<p>no</p>"), false)
			},
			want:   "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<p>no</p>",
			status: 404,
			header: map[string]string{"Content-Type": "text/html"},
			body:   "<p>no</p>",
			close:  true,
		},
		{
			name:   "empty body without type",
			fn:     func(dst []byte) []byte { return parser.AppendResponse(dst, 403, "", "", nil, true) },
			want:   "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
			status: 403,
			header: map[string]string{"Content-Type": ""},
		},
		{
			name:   "unlisted status",
			fn:     func(dst []byte) []byte { return parser.AppendResponse(dst, 299, "", "", []byte("x"), false) },
			want:   "HTTP/1.1 299 Status\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
			status: 299,
			body:   "x",
			close:  true,
		},
	}
}

// errorAppender is a row for AppendError checked through net/http only.
func errorAppender(e *parser.Error, status int) appender {
	return appender{
		name:   "error " + e.Reason,
		fn:     func(dst []byte) []byte { return parser.AppendError(dst, e) },
		status: status,
		header: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		body:   e.Body + "\n",
		close:  true,
	}
}

func TestResponseBytes(t *testing.T) {
	for i, tt := range appenders() {
		if tt.want == "" {
			continue
		}
		if got := string(tt.fn(nil)); got != tt.want {
			t.Errorf("#%d %s: got\n%q\nwant\n%q", i, tt.name, got, tt.want)
		}
	}
}

// TestResponsesParse reads every response back with net/http.
func TestResponsesParse(t *testing.T) {
	for i, tt := range appenders() {
		out := tt.fn(nil)
		br := bufio.NewReader(bytes.NewReader(out))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("#%d %s: ReadResponse: %v", i, tt.name, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Errorf("#%d %s: reading body: %v", i, tt.name, err)
		}
		if resp.StatusCode != tt.status || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
			t.Errorf("#%d %s: got status %d HTTP/%d.%d; want %d HTTP/1.1", i, tt.name, resp.StatusCode, resp.ProtoMajor, resp.ProtoMinor, tt.status)
		}
		if want := strconv.Itoa(tt.status) + " " + parser.StatusText(tt.status); resp.Status != want {
			t.Errorf("#%d %s: got status line %q; want %q", i, tt.name, resp.Status, want)
		}
		for k, want := range tt.header {
			if got := strings.Join(resp.Header.Values(k), ", "); got != want {
				t.Errorf("#%d %s: got %s %q; want %q", i, tt.name, k, got, want)
			}
		}
		if string(body) != tt.body {
			t.Errorf("#%d %s: got body %q; want %q", i, tt.name, body, tt.body)
		}
		if tt.status != 101 && resp.ContentLength != int64(len(tt.body)) {
			t.Errorf("#%d %s: got Content-Length %d; want %d", i, tt.name, resp.ContentLength, len(tt.body))
		}
		if resp.Close != tt.close {
			t.Errorf("#%d %s: got Close %v; want %v", i, tt.name, resp.Close, tt.close)
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Errorf("#%d %s: %d bytes after the response", i, tt.name, len(rest))
		}
	}
}

// TestResponseAppends checks that every function appends: the bytes already
// in dst are kept, whether or not dst has room to spare.
func TestResponseAppends(t *testing.T) {
	const prefix = "HTTP/1.1 100 Continue\r\n\r\n"
	for i, tt := range appenders() {
		fresh := string(tt.fn(nil))
		for _, spare := range []int{0, 1024} {
			dst := append(make([]byte, 0, len(prefix)+spare), prefix...)
			got := string(tt.fn(dst))
			if got != prefix+fresh {
				t.Errorf("#%d %s (spare %d): got %q; want the prefix then %q", i, tt.name, spare, got, fresh)
			}
		}
	}
}

func TestStatusText(t *testing.T) {
	// The reason phrases of RFC 9110 §15.
	tests := []struct {
		status int
		want   string
	}{
		{101, "Switching Protocols"},
		{200, "OK"},
		{204, "No Content"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{408, "Request Timeout"},
		{413, "Content Too Large"},
		{414, "URI Too Long"},
		{426, "Upgrade Required"},
		{429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"},
		{501, "Not Implemented"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{504, "Gateway Timeout"},
		{505, "HTTP Version Not Supported"},
		{299, "Status"},
		{0, "Status"},
	}
	for i, tt := range tests {
		if got := parser.StatusText(tt.status); got != tt.want {
			t.Errorf("#%d %d: got %q; want %q", i, tt.status, got, tt.want)
		}
	}
}

// TestAppendResponseNoContent checks RFC 9110 §8.6: a server MUST NOT send
// Content-Length in a 1xx or 204 response.
func TestAppendResponseNoContent(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"204 No Content", 204},
		{"1xx", 103},
	}
	for i, tt := range tests {
		out := parser.AppendResponse(nil, tt.status, "", "", nil, true)
		if bytes.Contains(out, []byte("Content-Length")) {
			t.Errorf("#%d %s: got %q; want no Content-Length", i, tt.name, out)
		}
	}
}

func TestAppendSwitchingTo(t *testing.T) {
	tests := []struct{ protocol, want string }{
		{"foo/2", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/2\r\n\r\n"},
		{"tcp", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"},
	}
	for i, tt := range tests {
		if got := string(parser.AppendSwitchingTo(nil, []byte(tt.protocol))); got != tt.want {
			t.Errorf("#%d: got %q; want %q", i, got, tt.want)
		}
	}
}
