package parser_test

import (
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// The opening handshake example of RFC 6455 §1.3.
const (
	sampleKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// wsReq builds an opening handshake with request line line: Host, Upgrade
// and Connection, then fields.
func wsReq(line string, fields ...string) string {
	return mkReq(line, append([]string{"Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade"}, fields...)...)
}

// wsGet builds a GET /chat handshake with the sample key, version 13 and
// then fields.
func wsGet(fields ...string) string {
	return wsReq("GET /chat HTTP/1.1", append([]string{"Sec-WebSocket-Key: " + sampleKey, "Sec-WebSocket-Version: 13"}, fields...)...)
}

func TestCheckWebSocket(t *testing.T) {
	key := "Sec-WebSocket-Key: " + sampleKey
	v13 := "Sec-WebSocket-Version: 13"
	tests := []struct {
		name   string
		in     string
		err    error
		status int
		header string
	}{
		{"RFC 6455 example", wsGet("Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat"), nil, 0, ""},
		{"fields in another order", wsReq("GET / HTTP/1.1", v13, key), nil, 0, ""},
		{"OWS around values", wsReq("GET / HTTP/1.1", "Sec-WebSocket-Key: \t"+sampleKey+" ", "Sec-WebSocket-Version:  13\t"), nil, 0, ""},
		{"Content-Length 0", wsGet("Content-Length: 0"), nil, 0, ""},
		{"lower-case names", wsReq("GET / HTTP/1.1", "sec-websocket-key: "+sampleKey, "sec-websocket-version: 13"), nil, 0, ""},

		{"POST", wsReq("POST /chat HTTP/1.1", key, v13), parser.ErrWebSocketMethod, 405, "Allow: GET\r\n"},
		{"lower-case get", wsReq("get /chat HTTP/1.1", key, v13), parser.ErrWebSocketMethod, 405, "Allow: GET\r\n"},
		{"CONNECT", wsReq("CONNECT h:443 HTTP/1.1", key, v13), parser.ErrWebSocketMethod, 405, "Allow: GET\r\n"},
		{"HTTP/1.0", wsReq("GET /chat HTTP/1.0", key, v13), parser.ErrWebSocketHTTP10, 400, ""},

		{"missing key", wsReq("GET / HTTP/1.1", v13), parser.ErrWebSocketKey, 400, ""},
		{"two equal keys", wsGet(key), parser.ErrWebSocketKey, 400, ""},
		{"two keys on one line", wsReq("GET / HTTP/1.1", key+", "+sampleKey, v13), parser.ErrWebSocketKey, 400, ""},
		{"empty key", wsReq("GET / HTTP/1.1", "Sec-WebSocket-Key:", v13), parser.ErrWebSocketKey, 400, ""},
		{"short key", wsReq("GET / HTTP/1.1", "Sec-WebSocket-Key: abc", v13), parser.ErrWebSocketKey, 400, ""},
		{"raw 16-byte key", wsReq("GET / HTTP/1.1", "Sec-WebSocket-Key: 0123456789abcdef", v13), parser.ErrWebSocketKey, 400, ""},
		{"invalid base64", wsReq("GET / HTTP/1.1", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==", v13), parser.ErrWebSocketKey, 400, ""},

		{"missing version", wsReq("GET / HTTP/1.1", key), parser.ErrMissingWSVersion, 400, ""},
		{"version 8", wsReq("GET / HTTP/1.1", key, "Sec-WebSocket-Version: 8"), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
		{"version 13, 8", wsReq("GET / HTTP/1.1", key, "Sec-WebSocket-Version: 13, 8"), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
		{"two version lines", wsGet(v13), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
		{"version lines 8 and 13", wsReq("GET / HTTP/1.1", key, "Sec-WebSocket-Version: 8", v13), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
		{"version 013", wsReq("GET / HTTP/1.1", key, "Sec-WebSocket-Version: 013"), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
		{"empty version", wsReq("GET / HTTP/1.1", key, "Sec-WebSocket-Version:"), parser.ErrWebSocketVersion, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},

		{"Content-Length 5", wsGet("Content-Length: 5"), parser.ErrWebSocketBody, 400, ""},
		{"chunked", wsGet("Transfer-Encoding: chunked"), parser.ErrWebSocketBody, 400, ""},
	}
	for i, tt := range tests {
		r, _, err := parseStr(tt.in, parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: Parse: %v", i, tt.name, err)
			continue
		}
		var accept [parser.AcceptLen]byte
		err = r.CheckWebSocket(&accept)
		if err != tt.err {
			t.Errorf("#%d %s: got %v; want %v", i, tt.name, err, tt.err)
			continue
		}
		if got := statusOf(err); got != tt.status {
			t.Errorf("#%d %s: got status %d; want %d", i, tt.name, got, tt.status)
		}
		if err != nil {
			if got := err.(*parser.Error).Header; got != tt.header {
				t.Errorf("#%d %s: got header %q; want %q", i, tt.name, got, tt.header)
			}
			continue
		}
		if got := string(accept[:]); got != sampleAccept {
			t.Errorf("#%d %s: got accept %q; want %q", i, tt.name, got, sampleAccept)
		}
	}
}

// refAccept computes Sec-WebSocket-Accept the straightforward way.
func refAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestAcceptKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want string
	}{
		{"RFC 6455 §1.3", sampleKey, sampleAccept},
		{"another known pair", "x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
		{"all zero key", "AAAAAAAAAAAAAAAAAAAAAA==", refAccept("AAAAAAAAAAAAAAAAAAAAAA==")},
		{"empty key", "", refAccept("")},
		{"short key", "abc", refAccept("abc")},
		{"long key", strings.Repeat("k", 100), refAccept(strings.Repeat("k", 100))},
	}
	for i, tt := range tests {
		var dst [parser.AcceptLen]byte
		parser.AcceptKey(&dst, []byte(tt.key))
		if got := string(dst[:]); got != tt.want {
			t.Errorf("#%d %s: got %q; want %q", i, tt.name, got, tt.want)
		}
	}
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"RFC sample", sampleKey, true},
		{"zero bytes", "AAAAAAAAAAAAAAAAAAAAAA==", true},
		{"all ones", "/////////////////////w==", true},
		{"raw 16-byte key", "0123456789abcdef", false},
		{"empty", "", false},
		{"23 characters", sampleKey[:23], false},
		{"25 characters", sampleKey + "=", false},
		{"not padded", strings.TrimRight(sampleKey, "="), false},
		{"invalid character", "dGhlIHNhbXBsZSBub25jZ!==", false},
		{"URL alphabet", "-_-_-_-_-_-_-_-_-_-_-w==", false},
		{"space inside", "dGhlIHNhbXBs ZSBub25jZ==", false},
		{"15 bytes", base64.StdEncoding.EncodeToString(make([]byte, 15)), false},
		{"15 bytes padded to 24", base64.StdEncoding.EncodeToString(make([]byte, 15)) + "A===", false},
		{"17 bytes", base64.StdEncoding.EncodeToString(make([]byte, 17)), false},
		{"18 bytes", base64.StdEncoding.EncodeToString(make([]byte, 18)), false},
		{"padding in the middle", "AAAA==AAAAAAAAAAAAAAAA==", false},
		{"three padding characters", "AAAAAAAAAAAAAAAAAAAAA===", false},
		{"non-zero padding bits (RFC 4648 §3.5)", "AAAAAAAAAAAAAAAAAAAAAB==", false},
	}
	for i, tt := range tests {
		if got := parser.ValidKey([]byte(tt.key)); got != tt.want {
			t.Errorf("#%d %s: ValidKey(%q) = %v; want %v", i, tt.name, tt.key, got, tt.want)
		}
	}
}

func TestSelectSubprotocol(t *testing.T) {
	tests := []struct {
		name      string
		fields    []string
		supported []string
		want      string // "<nil>" for none
		err       error
	}{
		{"client order wins", []string{"Sec-WebSocket-Protocol: chat, superchat"}, []string{"superchat", "chat"}, "chat", nil},
		{"second of the client", []string{"Sec-WebSocket-Protocol: chat, superchat"}, []string{"superchat"}, "superchat", nil},
		{"several lines", []string{"Sec-WebSocket-Protocol: a", "X: y", "sec-websocket-protocol: b, chat"}, []string{"chat", "b"}, "b", nil},
		{"OWS and empty elements", []string{"Sec-WebSocket-Protocol: ,\t, chat ,"}, []string{"chat"}, "chat", nil},
		{"case-sensitive", []string{"Sec-WebSocket-Protocol: Chat, CHAT"}, []string{"chat"}, "<nil>", nil},
		{"no prefix match", []string{"Sec-WebSocket-Protocol: cha, chats"}, []string{"chat"}, "<nil>", nil},
		{"none supported", []string{"Sec-WebSocket-Protocol: a, b"}, []string{"chat"}, "<nil>", nil},
		{"server supports none", []string{"Sec-WebSocket-Protocol: a"}, nil, "<nil>", nil},
		{"absent", nil, []string{"chat"}, "<nil>", nil},
		{"empty", []string{"Sec-WebSocket-Protocol:"}, []string{"chat"}, "<nil>", nil},
		{"dotted token", []string{"Sec-WebSocket-Protocol: v1.chat.example.com"}, []string{"v1.chat.example.com"}, "v1.chat.example.com", nil},
		{"space inside", []string{"Sec-WebSocket-Protocol: chat, a b"}, []string{"chat"}, "<nil>", parser.ErrBadSubprotocols},
		{"slash", []string{"Sec-WebSocket-Protocol: a/b"}, []string{"a/b"}, "<nil>", parser.ErrBadSubprotocols},
		{"quoted", []string{`Sec-WebSocket-Protocol: "chat"`}, []string{"chat"}, "<nil>", parser.ErrBadSubprotocols},
		{"bad element on a later line", []string{"Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: x;y"}, []string{"chat"}, "<nil>", parser.ErrBadSubprotocols},
	}
	for i, tt := range tests {
		r, _, err := parseStr(wsGet(tt.fields...), parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: Parse: %v", i, tt.name, err)
			continue
		}
		got, err := r.SelectSubprotocol(tt.supported)
		if show(got) != tt.want || err != tt.err {
			t.Errorf("#%d %s: got (%q, %v); want (%q, %v)", i, tt.name, show(got), err, tt.want, tt.err)
		}
		if err != nil && statusOf(err) != 400 {
			t.Errorf("#%d %s: got status %d; want 400", i, tt.name, statusOf(err))
		}
	}
}

// offers renders every extension offer as "name; p; q=v" and returns the
// iterator's error.
func offers(r *parser.Request) ([]string, error) {
	var out []string
	it := r.Extensions()
	for it.Next() {
		s := string(it.Name())
		for {
			name, value, ok := it.Param()
			if !ok {
				break
			}
			s += "; " + string(name)
			if value != nil {
				s += "=" + string(value)
			}
		}
		out = append(out, s)
	}
	if it.Next() {
		out = append(out, "Next true after the end")
	}
	return out, it.Err()
}

func TestExtensions(t *testing.T) {
	const h = "Sec-WebSocket-Extensions: "
	tests := []struct {
		name   string
		fields []string
		want   []string
		err    error
	}{
		{"one offer", []string{h + "permessage-deflate; client_max_window_bits"}, []string{"permessage-deflate; client_max_window_bits"}, nil},
		{"two offers", []string{h + "permessage-deflate; client_max_window_bits=15; server_no_context_takeover, permessage-deflate"},
			[]string{"permessage-deflate; client_max_window_bits=15; server_no_context_takeover", "permessage-deflate"}, nil},
		{"quoted value", []string{h + `x; a="10"`}, []string{"x; a=10"}, nil},
		{"quoted and plain values", []string{h + `x; a="10"; b=2; c`}, []string{"x; a=10; b=2; c"}, nil},
		{"several lines", []string{h + "a; x=1", "X: y", "sec-websocket-extensions: b, c; y"}, []string{"a; x=1", "b", "c; y"}, nil},
		{"whitespace variants", []string{h + "  x ;a = 1 ;\tb  ,  y  ,\tz\t;\tc=\"2\"\t"}, []string{"x; a=1; b", "y", "z; c=2"}, nil},
		{"no whitespace", []string{h + "x;a=1;b,y"}, []string{"x; a=1; b", "y"}, nil},
		{"empty elements", []string{h + ", x,, y ,"}, []string{"x", "y"}, nil},
		{"empty header", []string{h}, nil, nil},
		{"absent", nil, nil, nil},

		{"lone semicolon", []string{h + ";"}, nil, parser.ErrBadExtensions},
		{"no parameter after semicolon", []string{h + "x;"}, nil, parser.ErrBadExtensions},
		{"no parameter name", []string{h + "x; =1"}, nil, parser.ErrBadExtensions},
		{"no value", []string{h + "x; a="}, nil, parser.ErrBadExtensions},
		{"unterminated quote", []string{h + `x; a="1`}, nil, parser.ErrBadExtensions},
		{"space in quotes", []string{h + `x; a="b c"`}, nil, parser.ErrBadExtensions},
		{"empty quotes", []string{h + `x; a=""`}, nil, parser.ErrBadExtensions},
		{"backslash in quotes", []string{h + `x; a="\1"`}, nil, parser.ErrBadExtensions},
		{"comma in quotes", []string{h + `x; a="1,2"`}, nil, parser.ErrBadExtensions},
		{"two tokens", []string{h + "x y"}, nil, parser.ErrBadExtensions},
		{"two tokens in a value", []string{h + "x; a=1 b"}, nil, parser.ErrBadExtensions},
		{"value on the name", []string{h + "x=1"}, nil, parser.ErrBadExtensions},
		{"non-token name", []string{h + "x/1"}, nil, parser.ErrBadExtensions},
		{"good offer then a bad one", []string{h + "x; a=1, ;"}, []string{"x; a=1"}, parser.ErrBadExtensions},
		{"bad offer on a later line", []string{h + "x", h + "y; a="}, []string{"x"}, parser.ErrBadExtensions},
	}
	for i, tt := range tests {
		r, _, err := parseStr(wsGet(tt.fields...), parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: Parse: %v", i, tt.name, err)
			continue
		}
		got, err := offers(r)
		if strings.Join(got, " | ") != strings.Join(tt.want, " | ") || err != tt.err {
			t.Errorf("#%d %s: got (%q, %v); want (%q, %v)", i, tt.name, got, err, tt.want, tt.err)
		}
		if err != nil && statusOf(err) != 400 {
			t.Errorf("#%d %s: got status %d; want 400", i, tt.name, statusOf(err))
		}
	}
}

// TestExtensionParamsUnread checks that an offer's parameters need not be
// read before the next offer.
func TestExtensionParamsUnread(t *testing.T) {
	r, _, err := parseStr(wsGet("Sec-WebSocket-Extensions: a; x=1; y, b; z"), parser.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	it := r.Extensions()
	for it.Next() {
		names = append(names, string(it.Name()))
	}
	if got := strings.Join(names, ","); got != "a,b" || it.Err() != nil {
		t.Errorf("got (%q, %v); want (%q, nil)", got, it.Err(), "a,b")
	}
}
