package deflate_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/parser"
)

// negHead builds a WebSocket opening handshake with one
// Sec-WebSocket-Extensions field line per value.
func negHead(values ...string) []byte {
	var b strings.Builder
	b.WriteString("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for _, v := range values {
		b.WriteString("Sec-WebSocket-Extensions: " + v + "\r\n")
	}
	b.WriteString("\r\n")
	in := []byte(b.String())
	return in[:len(in):len(in)]
}

// negParse parses a head built by negHead.
func negParse(t testing.TB, values ...string) *parser.Request {
	t.Helper()
	r := parser.NewRequest(parser.Limits{})
	if _, err := r.Parse(negHead(values...)); err != nil {
		t.Fatalf("Parse %q: %v", values, err)
	}
	return r
}

// negResponse negotiates the offers of values and renders the outcome: the
// response value, or "" when no offer was accepted.
func negResponse(t testing.TB, cfg deflate.Config, values ...string) (string, deflate.Params, error) {
	t.Helper()
	it := negParse(t, values...).Extensions()
	p, ok, err := deflate.Negotiate(&it, cfg)
	if err != nil {
		if ok || p != (deflate.Params{}) {
			t.Errorf("%q: error %v with ok %v and params %+v", values, err, ok, p)
		}
		return "", p, err
	}
	if !ok {
		if p != (deflate.Params{}) {
			t.Errorf("%q: declined with params %+v", values, p)
		}
		return "", p, nil
	}
	return string(deflate.AppendResponse(nil, p)), p, nil
}

// Responses under the default configuration.
const (
	pmd    = "permessage-deflate"
	noCtx  = pmd + "; server_no_context_takeover; client_no_context_takeover"
	noCtxS = noCtx + "; server_max_window_bits="
)

var (
	defCfg  = deflate.Config{}
	takeCfg = deflate.Config{ContextTakeover: true}
	min10   = deflate.Config{MinWindowBits: 10}
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		cfg   deflate.Config
		want  string // response; "" when every offer is declined
		err   error
	}{
		// One offer.
		{"plain", []string{pmd}, defCfg, noCtx, nil},
		{"client_max_window_bits without value", []string{pmd + "; client_max_window_bits"}, defCfg, noCtx, nil},
		{"client_max_window_bits hint, no client context", []string{pmd + "; client_max_window_bits=10"}, defCfg, noCtx, nil},
		{"server_max_window_bits", []string{pmd + "; server_max_window_bits=10"}, defCfg, noCtxS + "10", nil},
		{"server_no_context_takeover", []string{pmd + "; server_no_context_takeover"}, defCfg, noCtx, nil},
		{"client_no_context_takeover", []string{pmd + "; client_no_context_takeover"}, defCfg, noCtx, nil},
		{"all four", []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12"}, defCfg, noCtxS + "9", nil},
		{"all four, other order", []string{pmd + "; client_max_window_bits=12; server_max_window_bits=15; client_no_context_takeover; server_no_context_takeover"}, defCfg, noCtxS + "15", nil},
		{"OWS everywhere", []string{" \tpermessage-deflate ; server_max_window_bits = 11\t;client_max_window_bits  "}, defCfg, noCtxS + "11", nil},

		// Context takeover allowed.
		{"takeover: plain", []string{pmd}, takeCfg, pmd, nil},
		{"takeover: client_max_window_bits without value", []string{pmd + "; client_max_window_bits"}, takeCfg, pmd, nil},
		{"takeover: client window limited as offered", []string{pmd + "; client_max_window_bits=10"}, takeCfg, pmd + "; client_max_window_bits=10", nil},
		{"takeover: client window hint without client context", []string{pmd + "; client_max_window_bits=10; client_no_context_takeover"}, takeCfg, pmd + "; client_no_context_takeover", nil},
		{"takeover: server_no_context_takeover", []string{pmd + "; server_no_context_takeover"}, takeCfg, pmd + "; server_no_context_takeover", nil},
		{"takeover: both windows", []string{pmd + "; client_max_window_bits=15; server_max_window_bits=15"}, takeCfg, pmd + "; server_max_window_bits=15; client_max_window_bits=15", nil},
		{"takeover: all four", []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12"}, takeCfg, noCtxS + "9", nil},

		// Several offers, in the client's order.
		{"first of two", []string{pmd + "; server_max_window_bits=10, " + pmd}, defCfg, noCtxS + "10", nil},
		{"other extension skipped", []string{"x-webkit-deflate-frame, " + pmd + "; client_max_window_bits"}, defCfg, noCtx, nil},
		{"other extension with the same parameters", []string{"permessage-foo; server_max_window_bits=7, " + pmd + "; server_max_window_bits=12"}, defCfg, noCtxS + "12", nil},
		{"first declined, second accepted", []string{pmd + "; foo, " + pmd + "; server_max_window_bits=12"}, defCfg, noCtxS + "12", nil},
		{"window too small for the server, fallback", []string{pmd + "; server_max_window_bits=8, " + pmd + "; server_max_window_bits=10"}, min10, noCtxS + "10", nil},
		{"window too small for the server, plain fallback", []string{pmd + "; server_max_window_bits=9, " + pmd}, min10, noCtx, nil},
		{"three, last acceptable", []string{pmd + "; a, " + pmd + "; server_max_window_bits=16, " + pmd + "; server_max_window_bits=8"}, defCfg, noCtxS + "8", nil},

		// Offers spread over several field lines (RFC 6455 §9.1).
		{"two lines", []string{pmd + "; server_max_window_bits=7", pmd + "; server_max_window_bits=11"}, defCfg, noCtxS + "11", nil},
		{"other extension on the first line", []string{"foo", pmd}, defCfg, noCtx, nil},
		{"first line wins", []string{pmd + "; server_max_window_bits=13", pmd}, defCfg, noCtxS + "13", nil},
		{"empty line then offer", []string{"", pmd}, defCfg, noCtx, nil},

		// Quoted values: the parser strips the quotes.
		{"quoted server window", []string{pmd + `; server_max_window_bits="10"`}, defCfg, noCtxS + "10", nil},
		{"quoted client window", []string{pmd + `; client_max_window_bits="12"`}, takeCfg, pmd + "; client_max_window_bits=12", nil},
		{"quoted invalid window", []string{pmd + `; server_max_window_bits="16"`}, defCfg, "", nil},
		{"quoted value on a flag", []string{pmd + `; server_no_context_takeover="x"`}, defCfg, "", nil},

		// Case: names are compared exactly (see ExtensionName).
		{"name in other case", []string{"Permessage-Deflate"}, defCfg, "", nil},
		{"name in upper case", []string{"PERMESSAGE-DEFLATE; server_no_context_takeover"}, defCfg, "", nil},
		{"parameter in other case", []string{pmd + "; Server_No_Context_Takeover"}, defCfg, "", nil},
		{"other case, then lower case", []string{"Permessage-Deflate, " + pmd}, defCfg, noCtx, nil},

		// Declined: unknown parameters.
		{"unknown parameter", []string{pmd + "; foo"}, defCfg, "", nil},
		{"unknown parameter with value", []string{pmd + "; foo=1"}, defCfg, "", nil},
		{"unknown after known", []string{pmd + "; server_no_context_takeover; mux"}, defCfg, "", nil},
		{"response-only spelling", []string{pmd + "; max_window_bits=10"}, defCfg, "", nil},

		// Declined: a parameter twice.
		{"server_no_context_takeover twice", []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, defCfg, "", nil},
		{"client_no_context_takeover twice", []string{pmd + "; client_no_context_takeover; client_no_context_takeover"}, defCfg, "", nil},
		{"server_max_window_bits twice, same value", []string{pmd + "; server_max_window_bits=10; server_max_window_bits=10"}, defCfg, "", nil},
		{"server_max_window_bits twice, two values", []string{pmd + "; server_max_window_bits=10; server_max_window_bits=11"}, defCfg, "", nil},
		{"client_max_window_bits twice, without value", []string{pmd + "; client_max_window_bits; client_max_window_bits"}, defCfg, "", nil},
		{"client_max_window_bits twice, with and without value", []string{pmd + "; client_max_window_bits; client_max_window_bits=10"}, defCfg, "", nil},

		// Declined: a value where none is allowed (§7.1.1.1, §7.1.1.2).
		{"server_no_context_takeover with value", []string{pmd + "; server_no_context_takeover=1"}, defCfg, "", nil},
		{"client_no_context_takeover with value", []string{pmd + "; client_no_context_takeover=true"}, defCfg, "", nil},

		// Declined: a missing or invalid window size (§7.1.2).
		{"server_max_window_bits without value", []string{pmd + "; server_max_window_bits"}, defCfg, "", nil},
		{"server window 7", []string{pmd + "; server_max_window_bits=7"}, defCfg, "", nil},
		{"server window 16", []string{pmd + "; server_max_window_bits=16"}, defCfg, "", nil},
		{"server window 0", []string{pmd + "; server_max_window_bits=0"}, defCfg, "", nil},
		{"server window 1", []string{pmd + "; server_max_window_bits=1"}, defCfg, "", nil},
		{"server window leading zero", []string{pmd + "; server_max_window_bits=08"}, defCfg, "", nil},
		{"server window leading zero, two digits", []string{pmd + "; server_max_window_bits=010"}, defCfg, "", nil},
		{"server window sign", []string{pmd + "; server_max_window_bits=+9"}, defCfg, "", nil},
		{"server window negative", []string{pmd + "; server_max_window_bits=-9"}, defCfg, "", nil},
		{"server window decimal point", []string{pmd + "; server_max_window_bits=8.0"}, defCfg, "", nil},
		{"server window letters", []string{pmd + "; server_max_window_bits=ten"}, defCfg, "", nil},
		{"server window huge", []string{pmd + "; server_max_window_bits=4294967306"}, defCfg, "", nil},
		{"client window 7", []string{pmd + "; client_max_window_bits=7"}, defCfg, "", nil},
		{"client window 16", []string{pmd + "; client_max_window_bits=16"}, defCfg, "", nil},
		{"client window leading zero", []string{pmd + "; client_max_window_bits=09"}, defCfg, "", nil},
		{"client window letters", []string{pmd + "; client_max_window_bits=abc"}, takeCfg, "", nil},

		// Declined: a configuration the server does not support (§7.1.2.1).
		{"server window below MinWindowBits", []string{pmd + "; server_max_window_bits=9"}, min10, "", nil},
		{"server window at MinWindowBits", []string{pmd + "; server_max_window_bits=10"}, min10, noCtxS + "10", nil},
		{"client window below MinWindowBits is fine", []string{pmd + "; client_max_window_bits=8"}, deflate.Config{ContextTakeover: true, MinWindowBits: 15}, pmd + "; client_max_window_bits=8", nil},
		{"MinWindowBits 15", []string{pmd + "; server_max_window_bits=14"}, deflate.Config{MinWindowBits: 15}, "", nil},
		{"MinWindowBits above range counts as 15", []string{pmd + "; server_max_window_bits=14, " + pmd + "; server_max_window_bits=15"}, deflate.Config{MinWindowBits: 99}, noCtxS + "15", nil},
		{"MinWindowBits below range counts as 8", []string{pmd + "; server_max_window_bits=8"}, deflate.Config{MinWindowBits: -3}, noCtxS + "8", nil},

		// No permessage-deflate offer at all.
		{"no header", nil, defCfg, "", nil},
		{"empty header", []string{""}, defCfg, "", nil},
		{"other extensions only", []string{"foo; bar=1, baz"}, defCfg, "", nil},

		// Malformed headers: the iterator's error, whatever was accepted.
		{"empty value", []string{pmd + "; server_max_window_bits="}, defCfg, "", parser.ErrBadExtensions},
		{"empty parameter", []string{pmd + ";"}, defCfg, "", parser.ErrBadExtensions},
		{"empty quoted value", []string{pmd + `; server_max_window_bits=""`}, defCfg, "", parser.ErrBadExtensions},
		{"unterminated quote", []string{pmd + `; server_max_window_bits="10`}, defCfg, "", parser.ErrBadExtensions},
		{"escape in quotes", []string{pmd + `; server_max_window_bits="1\0"`}, defCfg, "", parser.ErrBadExtensions},
		{"two tokens in a value", []string{pmd + "; server_max_window_bits=10 11"}, defCfg, "", parser.ErrBadExtensions},
		{"value on the name", []string{pmd + "=1"}, defCfg, "", parser.ErrBadExtensions},
		{"parameter without offer", []string{"; server_no_context_takeover"}, defCfg, "", parser.ErrBadExtensions},
		{"malformed after an accepted offer", []string{pmd + ", x; a="}, defCfg, "", parser.ErrBadExtensions},
		{"malformed on a later line", []string{pmd, "x/1"}, defCfg, "", parser.ErrBadExtensions},
		{"malformed before an offer", []string{"x;;, " + pmd}, defCfg, "", parser.ErrBadExtensions},
	}
	for i, tt := range tests {
		got, _, err := negResponse(t, tt.cfg, tt.lines...)
		if got != tt.want || err != tt.err {
			t.Errorf("#%d %s: got (%q, %v); want (%q, %v)", i, tt.name, got, err, tt.want, tt.err)
		}
	}
}

// TestNegotiateAutobahn runs the offers of the Autobahn test suite's
// permessage-deflate cases (13.x): its client always sends
// client_max_window_bits without a value, optionally client_no_context_takeover,
// and asks for each of server_no_context_takeover and server_max_window_bits
// 8..15 alone and together, also as a list of fallbacks (13.7).
func TestNegotiateAutobahn(t *testing.T) {
	named := []struct {
		name  string
		offer string
		cfg   deflate.Config
		want  string
	}{
		{"13.1", pmd + "; client_max_window_bits", defCfg, noCtx},
		{"13.2", pmd + "; client_max_window_bits; server_no_context_takeover", defCfg, noCtx},
		{"13.3", pmd + "; client_max_window_bits; server_max_window_bits=8", defCfg, noCtxS + "8"},
		{"13.4", pmd + "; client_max_window_bits; server_max_window_bits=15", defCfg, noCtxS + "15"},
		{"13.5", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8", defCfg, noCtxS + "8"},
		{"13.6", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15", defCfg, noCtxS + "15"},
		{"13.7", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
			pmd + "; client_max_window_bits; server_no_context_takeover, " + pmd + "; client_max_window_bits", defCfg, noCtxS + "8"},
		{"13.7, server window 8 refused", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
			pmd + "; client_max_window_bits; server_no_context_takeover, " + pmd + "; client_max_window_bits", deflate.Config{MinWindowBits: 9}, noCtx},
		{"13.1, takeover", pmd + "; client_max_window_bits", takeCfg, pmd},
		{"13.2, takeover", pmd + "; client_max_window_bits; server_no_context_takeover", takeCfg, pmd + "; server_no_context_takeover"},
		{"13.3, takeover", pmd + "; client_max_window_bits; server_max_window_bits=8", takeCfg, pmd + "; server_max_window_bits=8"},
		{"13.5, takeover", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8", takeCfg,
			pmd + "; server_no_context_takeover; server_max_window_bits=8"},
		{"13.7, takeover", pmd + "; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
			pmd + "; client_max_window_bits; server_no_context_takeover, " + pmd + "; client_max_window_bits", takeCfg,
			pmd + "; server_no_context_takeover; server_max_window_bits=8"},
	}
	for i, tt := range named {
		got, _, err := negResponse(t, tt.cfg, tt.offer)
		if got != tt.want || err != nil {
			t.Errorf("#%d %s: got (%q, %v); want (%q, <nil>)", i, tt.name, got, err, tt.want)
		}
	}

	// The whole matrix, under both configurations.
	i := 0
	for _, take := range []bool{false, true} {
		for _, clientNoCtx := range []bool{false, true} {
			for _, serverNoCtx := range []bool{false, true} {
				for bits := 7; bits <= 15; bits++ { // 7: no server_max_window_bits
					offer := pmd
					if clientNoCtx {
						offer += "; client_no_context_takeover"
					}
					offer += "; client_max_window_bits"
					if serverNoCtx {
						offer += "; server_no_context_takeover"
					}
					if bits > 7 {
						offer += fmt.Sprintf("; server_max_window_bits=%d", bits)
					}
					want := pmd
					if !take || serverNoCtx {
						want += "; server_no_context_takeover"
					}
					if !take || clientNoCtx {
						want += "; client_no_context_takeover"
					}
					if bits > 7 {
						want += fmt.Sprintf("; server_max_window_bits=%d", bits)
					}
					got, p, err := negResponse(t, deflate.Config{ContextTakeover: take}, offer)
					if got != want || err != nil {
						t.Errorf("#%d %q (takeover %v): got (%q, %v); want (%q, <nil>)", i, offer, take, got, err, want)
					}
					wantBits := 15
					if bits > 7 {
						wantBits = bits
					}
					if p.ServerMaxWindowBits() != wantBits || p.ClientMaxWindowBits() != 15 {
						t.Errorf("#%d %q: got windows %d, %d; want %d, 15", i, offer, p.ServerMaxWindowBits(), p.ClientMaxWindowBits(), wantBits)
					}
					i++
				}
			}
		}
	}
}

// TestParams checks the accessors of agreed parameters.
func TestParams(t *testing.T) {
	tests := []struct {
		offer          string
		cfg            deflate.Config
		serverNoCtx    bool
		clientNoCtx    bool
		server, client int
	}{
		{pmd, defCfg, true, true, 15, 15},
		{pmd, takeCfg, false, false, 15, 15},
		{pmd + "; server_max_window_bits=9", defCfg, true, true, 9, 15},
		{pmd + "; client_max_window_bits=9", defCfg, true, true, 15, 15},
		{pmd + "; client_max_window_bits=9", takeCfg, false, false, 15, 9},
		{pmd + "; client_max_window_bits=9; client_no_context_takeover", takeCfg, false, true, 15, 15},
		{pmd + "; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11", takeCfg, true, false, 12, 11},
	}
	for i, tt := range tests {
		_, p, err := negResponse(t, tt.cfg, tt.offer)
		if err != nil {
			t.Fatalf("#%d %q: %v", i, tt.offer, err)
		}
		got := fmt.Sprint(p.ServerNoContextTakeover(), p.ClientNoContextTakeover(), p.ServerMaxWindowBits(), p.ClientMaxWindowBits())
		want := fmt.Sprint(tt.serverNoCtx, tt.clientNoCtx, tt.server, tt.client)
		if got != want {
			t.Errorf("#%d %q: got %s; want %s", i, tt.offer, got, want)
		}
	}
	var zero deflate.Params
	if got := string(deflate.AppendResponse(nil, zero)); got != pmd {
		t.Errorf("zero Params: got %q; want %q", got, pmd)
	}
	if zero.ServerMaxWindowBits() != 15 || zero.ClientMaxWindowBits() != 15 || zero.ServerNoContextTakeover() || zero.ClientNoContextTakeover() {
		t.Errorf("zero Params: got %v %v %d %d; want false false 15 15", zero.ServerNoContextTakeover(), zero.ClientNoContextTakeover(),
			zero.ServerMaxWindowBits(), zero.ClientMaxWindowBits())
	}
}

// TestAppendResponseAppends checks that AppendResponse keeps what dst
// holds and never exceeds MaxResponseLen.
func TestAppendResponseAppends(t *testing.T) {
	_, p, err := negResponse(t, takeCfg, pmd+"; server_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15")
	if err != nil {
		t.Fatal(err)
	}
	got := string(deflate.AppendResponse([]byte("x: "), p))
	want := "x: " + pmd + "; server_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15"
	if got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if n := len(got) - 3; n > deflate.MaxResponseLen {
		t.Errorf("got %d bytes; want at most MaxResponseLen = %d", n, deflate.MaxResponseLen)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		min int
		err error
	}{
		{0, nil}, {8, nil}, {9, nil}, {15, nil},
		{-1, deflate.ErrConfigWindowBits}, {1, deflate.ErrConfigWindowBits},
		{7, deflate.ErrConfigWindowBits}, {16, deflate.ErrConfigWindowBits},
	}
	for i, tt := range tests {
		if err := (deflate.Config{MinWindowBits: tt.min}).Validate(); err != tt.err {
			t.Errorf("#%d MinWindowBits %d: got %v; want %v", i, tt.min, err, tt.err)
		}
	}
}
