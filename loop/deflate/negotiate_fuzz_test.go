package deflate_test

import (
	"bytes"
	"testing"

	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/parser"
)

// FuzzNegotiate checks, for any Sec-WebSocket-Extensions value the parser
// takes and any configuration, that Negotiate
//   - never panics, and returns no Params with an error or a decline;
//   - fails only with the iterator's error, parser.ErrBadExtensions;
//   - when it accepts an offer, answers with a response that the parser
//     reads back as exactly one permessage-deflate offer, which Negotiate
//     accepts with the same Params: the response states all that was
//     agreed, and nothing an offer could not carry.
func FuzzNegotiate(f *testing.F) {
	seeds := []string{
		pmd,
		pmd + "; client_max_window_bits",
		pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12",
		pmd + `; server_max_window_bits="10", ` + pmd,
		"x-webkit-deflate-frame, " + pmd + "; client_max_window_bits=8",
		pmd + "; server_max_window_bits=08; foo",
		pmd + "; client_max_window_bits; client_max_window_bits",
		pmd + ", x; a=",
		"Permessage-Deflate; Server_No_Context_Takeover",
		"",
	}
	for i, s := range seeds {
		f.Add(s, i%2 == 0, uint8(i+5))
	}
	head := negHead()
	head = head[:len(head)-2] // without the blank line
	f.Fuzz(func(t *testing.T, value string, take bool, minBits uint8) {
		cfg := deflate.Config{ContextTakeover: take, MinWindowBits: int(minBits)}
		in := append(append([]byte(nil), head...), "Sec-WebSocket-Extensions: "+value+"\r\n\r\n"...)
		r := parser.NewRequest(parser.Limits{})
		if _, err := r.Parse(in[:len(in):len(in)]); err != nil {
			return
		}
		it := r.Extensions()
		p, ok, err := deflate.Negotiate(&it, cfg)
		if err != nil {
			if err != parser.ErrBadExtensions {
				t.Fatalf("%q: got error %v; want parser.ErrBadExtensions", value, err)
			}
			if ok || p != (deflate.Params{}) {
				t.Fatalf("%q: error %v with ok %v and params %+v", value, err, ok, p)
			}
			return
		}
		if !ok {
			if p != (deflate.Params{}) {
				t.Fatalf("%q: declined with params %+v", value, p)
			}
			return
		}
		resp := deflate.AppendResponse(nil, p)
		if len(resp) > deflate.MaxResponseLen {
			t.Fatalf("%q: response %q longer than MaxResponseLen", value, resp)
		}
		if !bytes.Equal(deflate.AppendResponse(nil, p), resp) {
			t.Fatalf("%q: AppendResponse is not deterministic", value)
		}

		back := parser.NewRequest(parser.Limits{})
		in2 := append(append([]byte(nil), head...), "Sec-WebSocket-Extensions: "+string(resp)+"\r\n\r\n"...)
		if _, err := back.Parse(in2[:len(in2):len(in2)]); err != nil {
			t.Fatalf("%q: response %q does not parse: %v", value, resp, err)
		}
		n := 0
		for it := back.Extensions(); it.Next(); n++ {
			if string(it.Name()) != deflate.ExtensionName {
				t.Fatalf("%q: response %q names %q", value, resp, it.Name())
			}
		}
		if n != 1 {
			t.Fatalf("%q: response %q holds %d offers; want 1", value, resp, n)
		}
		it = back.Extensions()
		p2, ok2, err2 := deflate.Negotiate(&it, cfg)
		if !ok2 || err2 != nil || p2 != p {
			t.Fatalf("%q: response %q negotiates to (%+v, %v, %v); want (%+v, true, <nil>)", value, resp, p2, ok2, err2, p)
		}
	})
}
