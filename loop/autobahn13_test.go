//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/deflate"
)

// ab13Sizes are the cases k of 13.x.k run, of the 18 of MSG_SIZES
// (ab12Sizes): 16 and 64 bytes, 1 KiB, 16 KiB and 128 KiB in one frame,
// 8 KiB and 128 KiB in 256-byte frames, 128 KiB in 32 KiB frames.
var ab13Sizes = []int{1, 2, 4, 7, 10, 11, 15, 18}

// pmdAnswer is the server's Sec-WebSocket-Extensions for an accepted offer
// that asked for a server window of bits (0: no server_max_window_bits).
func pmdAnswer(bits int) string {
	if bits == 0 {
		return pmdResponse
	}
	return fmt.Sprintf("%s; server_max_window_bits=%d", pmdResponse, bits)
}

// TestAutobahn13Parameters ports group 13: the suite's offers, the
// server's exact answer to each and then messages of the JSON data set
// (12.1) echoed, compressed within the window agreed. The server
// negotiates with deflate.Negotiate and the default Config, so it answers
// server_no_context_takeover and client_no_context_takeover to every offer
// (RFC 7692 §7.1.1 lets it) and repeats server_max_window_bits when
// offered; the suite's client offers accept both.
//
//	13.1  permessage-deflate; client_no_context_takeover; client_max_window_bits
//	13.2  ... ; server_no_context_takeover
//	13.3  ... ; server_max_window_bits=8
//	13.4  ... ; server_max_window_bits=15
//	13.5  ... ; server_no_context_takeover; server_max_window_bits=8
//	13.6  ... ; server_no_context_takeover; server_max_window_bits=15
//	13.7  the offers of 13.5, 13.2 and 13.1 in one header: 13.5's is taken
//
// Each runs the cases 13.x.k of ab13Sizes rather than all 18, each with
// ab12Messages messages rather than 1000; under the race detector none
// larger than ab13MaxPayload (race_test.go).
func TestAutobahn13Parameters(t *testing.T) { autobahn13Parameters(t, overTCP) }

func autobahn13Parameters(t *testing.T, wr wire) {
	s := wr.startPMD(t)
	const (
		base = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
		snc  = "; server_no_context_takeover"
	)
	groups := []struct {
		offer string
		bits  int // server_max_window_bits answered; 0 for none
	}{
		{base, 0},
		{base + snc, 0},
		{base + "; server_max_window_bits=8", 8},
		{base + "; server_max_window_bits=15", 15},
		{base + snc + "; server_max_window_bits=8", 8},
		{base + snc + "; server_max_window_bits=15", 15},
		{base + snc + "; server_max_window_bits=8, " + base + snc + ", " + base, 8},
	}
	json := ab12Data()[0]
	for g, gr := range groups {
		window := gr.bits
		if window == 0 { // no limit: DEFLATE's own window
			window = deflate.MaxWindowBits
		}
		var cases []abCase
		for _, k := range ab13Sizes {
			if ab12Sizes[k-1].n > ab13MaxPayload {
				continue
			}
			cases = append(cases, abCase{fmt.Sprintf("13.%d.%d", g+1, k), func(w *wsClient) {
				pmdEcho(w, json, ab12Sizes[k-1], window)
			}})
		}
		runPMDCases(t, s, gr.offer, pmdAnswer(gr.bits), cases)
	}
}

// TestAutobahn13Offers goes past the suite's offers: every
// server_max_window_bits from 8 to 15, alone and with the other
// parameters, client_max_window_bits with a value, and the offers the
// server declines, each with the server's exact answer, then a 16-byte
// message and 16 KiB and ab13MaxPayload (128 KiB; 32 KiB under the race
// detector) ones in 256-byte frames echoed
// (compressed within the window agreed when the offer was accepted, plain
// otherwise).
func TestAutobahn13Offers(t *testing.T) { autobahn13Offers(t, overTCP) }

func autobahn13Offers(t *testing.T, wr wire) {
	s := wr.startPMD(t)
	const pmd = "permessage-deflate"
	type row struct {
		offer  string
		answer string // "" when declined: no extension in the 101
		bits   int    // the server's window
	}
	var rows []row
	for bits := deflate.MinWindowBits; bits <= deflate.MaxWindowBits; bits++ {
		smwb := fmt.Sprintf("server_max_window_bits=%d", bits)
		rows = append(rows,
			row{pmd + "; " + smwb, pmdAnswer(bits), bits},
			row{pmd + "; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; " + smwb, pmdAnswer(bits), bits},
		)
	}
	rows = append(rows, []row{
		// Neither no_context_takeover offered: the server answers both,
		// which RFC 7692 §7.1.1.1 and §7.1.1.2 allow.
		{pmd, pmdResponse, 15},
		// A client window with a value is a hint the server need not
		// take (§7.1.2.2); without client context takeover it has no use
		// for it.
		{pmd + "; client_max_window_bits=9", pmdResponse, 15},
		{pmd + "; client_max_window_bits=10; server_max_window_bits=12", pmdAnswer(12), 12},
		// A quoted value is the token inside (RFC 6455 §9.1).
		{pmd + `; server_max_window_bits="11"`, pmdAnswer(11), 11},
		// Other extensions are skipped.
		{"x-webkit-deflate-frame, " + pmd + "; server_max_window_bits=9", pmdAnswer(9), 9},
		// Declined offers, then an acceptable one: the server takes the
		// first it can (§5). Declined: server_max_window_bits without a
		// value or out of 8..15, and a parameter given twice (§7).
		{pmd + "; server_max_window_bits, " + pmd + "; server_max_window_bits=10", pmdAnswer(10), 10},
		{pmd + "; server_max_window_bits=16, " + pmd, pmdResponse, 15},
		{pmd + "; server_max_window_bits=7, " + pmd + "; server_max_window_bits=8", pmdAnswer(8), 8},
		{pmd + "; client_no_context_takeover; client_no_context_takeover, " + pmd, pmdResponse, 15},
		// Every offer declined: the server answers without the
		// extension and the connection goes on uncompressed. Declined: a
		// value on a no_context_takeover parameter, a window of "08" (no
		// leading zeros, §7.1.2), an unknown parameter, a name in
		// another case (extension names are tokens matched exactly).
		{pmd + "; server_no_context_takeover=1", "", 0},
		{pmd + "; server_max_window_bits=08, " + pmd + "; client_max_window_bits=0", "", 0},
		{pmd + "; mux", "", 0},
		{"Permessage-Deflate", "", 0},
	}...)
	json := ab12Data()[0]
	for i, r := range rows {
		t.Run(fmt.Sprintf("#%d", i), func(t *testing.T) {
			w, got := s.dialPMD(t, r.offer)
			if got != r.answer {
				t.Fatalf("#%d: offer %q: got Sec-WebSocket-Extensions %q; want %q", i, r.offer, got, r.answer)
			}
			if r.answer == "" {
				for _, m := range json.messages(16<<10, 2) {
					w.Write(msg(ws.OpText, m))
					w.ExpectMessage(ws.OpText, m)
				}
				w.CloseNormally()
				return
			}
			for _, sz := range []abSize{{16, 0}, {16 << 10, 256}, {ab13MaxPayload, 256}} {
				for _, m := range json.messages(sz.n, 1) {
					w.sendCompressed(ws.OpText, m, sz.frag)
					w.expectEcho(ws.OpText, m, len(m) >= ab12Threshold, r.bits)
				}
			}
			w.CloseNormally()
		})
	}
}
