package parser_test

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/upgate/upgate/parser"
)

// FuzzParse checks, for any input, that the parser
//   - never panics and never reads past its input (the input is given with
//     its capacity equal to its length, so any read beyond it panics);
//   - gives the same result whether the input comes whole or in two parts,
//     and when its buffer moves between the parts;
//   - only accepts heads that Go's net/http.ReadRequest accepts too, with the
//     same method, target, version, Host and Content-Length;
//   - keeps every negotiation helper total on what it accepts.
func FuzzParse(f *testing.F) {
	// The parsers take heads of up to maxHead bytes; the bytes of a longer
	// input past the limit change nothing, so inputs stop a little beyond
	// it: a large input makes every mutation and run slow.
	const maxHead = 4096
	for _, hs := range handshakes {
		f.Add([]byte(hs.head), uint16(len(hs.head)/2))
	}
	seeds := []string{
		"GET / HTTP/1.0\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://a.example/p?q=1 HTTP/1.1\r\nHost: b\r\n\r\n",
		"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, websocket\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Extensions: a; b=\"c\", d\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(len(s)/3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		if len(in) > maxHead+64 {
			return
		}
		in = in[:len(in):len(in)]
		whole := parser.NewRequest(parser.Limits{MaxHeadBytes: maxHead, MaxFields: 32})
		n, err := whole.Parse(in)

		// Split feeding, with the buffer moved between the calls.
		k := int(split) % (len(in) + 1)
		parts := parser.NewRequest(parser.Limits{MaxHeadBytes: maxHead, MaxFields: 32})
		n2, err2 := parts.Parse(bytes.Clone(in[:k]))
		if err2 == parser.ErrNeedMore {
			n2, err2 = parts.Parse(bytes.Clone(in))
		}
		if n != n2 || !sameError(err, err2) {
			t.Fatalf("split at %d: got (%d, %v); whole gave (%d, %v)", k, n2, err2, n, err)
		}
		if err != nil {
			var pe *parser.Error
			if err != parser.ErrNeedMore && !errors.As(err, &pe) {
				t.Fatalf("error %v is neither ErrNeedMore nor *Error", err)
			}
			if pe != nil && (pe.Status < 400 || pe.Status > 599) {
				t.Fatalf("error %v has status %d", err, pe.Status)
			}
			return
		}
		if string(whole.Target()) != string(parts.Target()) || whole.NumFields() != parts.NumFields() {
			t.Fatalf("split at %d: different views", k)
		}
		exerciseNegotiation(whole)
		compareWithNetHTTP(t, whole, in[:n])
	})
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// exerciseNegotiation runs every helper on an accepted request; they must
// not panic.
func exerciseNegotiation(r *parser.Request) {
	r.SelectUpgrade([]parser.Protocol{parser.WebSocket(), {Name: "h2c"}, {Name: "IRC", Version: "6.9"}})
	r.WantsUpgrade()
	r.KeepAlive()
	var accept [parser.AcceptLen]byte
	if r.CheckWebSocket(&accept) == nil {
		parser.AppendSwitching(nil, &accept, nil, nil)
	}
	r.SelectSubprotocol([]string{"chat"})
	it := r.Extensions()
	for it.Next() {
		for {
			if _, _, ok := it.Param(); !ok {
				break
			}
		}
	}
	for i := 0; i < r.NumFields(); i++ {
		r.Field(i)
	}
}

// compareWithNetHTTP checks that net/http accepts what the parser accepted
// and reads the same request line, Host and Content-Length.
func compareWithNetHTTP(t *testing.T, r *parser.Request, head []byte) {
	// RFC 9112 §2.2 lets a server skip empty lines before the request
	// line; net/http does not, so hand it the head without them.
	for bytes.HasPrefix(head, []byte("\r\n")) {
		head = head[2:]
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		t.Fatalf("parser accepted a head net/http rejects (%v):\n%q", err, head)
	}
	if req.Method != string(r.Method()) || req.RequestURI != string(r.Target()) {
		t.Fatalf("request line: net/http read %q %q; parser %q %q", req.Method, req.RequestURI, r.Method(), r.Target())
	}
	if req.ProtoMinor != r.Minor() || req.ProtoMajor != 1 {
		t.Fatalf("version: net/http read %d.%d; parser 1.%d", req.ProtoMajor, req.ProtoMinor, r.Minor())
	}
	if h := r.Host(); h != nil && req.URL.Host == "" && req.Host != string(h) {
		t.Fatalf("Host: net/http read %q; parser %q", req.Host, h)
	}
	if cl := r.ContentLength(); cl >= 0 && req.ContentLength != cl {
		t.Fatalf("Content-Length: net/http read %d; parser %d", req.ContentLength, cl)
	}
	if r.Chunked() && !(len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked") {
		t.Fatalf("Transfer-Encoding: net/http read %q; parser chunked", req.TransferEncoding)
	}
	// Every field line the parser kept is one net/http kept. net/http
	// folds repeated names into one key and takes Host, Transfer-Encoding
	// and repeated Content-Length lines out of the map, so compare the
	// other lines.
	lines := 0
	for name, v := range req.Header {
		switch name {
		case "Host", "Transfer-Encoding", "Content-Length":
		case "Cache-Control":
			// net/http adds it for "Pragma: no-cache" (RFC 7234 §5.4).
			if r.Get("Cache-Control") != nil {
				lines += len(v)
			}
		default:
			lines += len(v)
		}
	}
	framing := r.Count(parser.FieldHost) + r.Count(parser.FieldTransferEncoding) + r.Count(parser.FieldContentLength)
	if lines != r.NumFields()-framing {
		t.Fatalf("field lines: net/http read %d; parser %d", lines, r.NumFields()-framing)
	}
}
