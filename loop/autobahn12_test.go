//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/puff"
	"github.com/upgate/upgate/loop/deflate"
)

// This file holds the permessage-deflate client of groups 12 and 13: it
// offers the extension, compresses what it sends with loop/deflate and
// inflates what the server sends with internal/puff, which also measures
// the farthest back reference, so that a test sees the server compress
// within the window it agreed to.

// pmdOffer is the suite's default offer, PerMessageDeflateOffer(): the
// client accepts a limit on its window and no context takeover.
const pmdOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// pmdResponse is the server's answer to pmdOffer: no context takeover
// either way, which the server may always answer (RFC 7692 §7.1.1), and
// no client_max_window_bits, since the server inflates each message on its
// own and has no use for a smaller client window.
const pmdResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// ab12Threshold is the compression threshold of the servers of groups 12
// and 13: the suite's 16-byte messages are echoed uncompressed.
const ab12Threshold = 32

// startPMD starts, over wr, an echo server that negotiates
// permessage-deflate with deflate.Negotiate and the default Config and
// compresses messages of ab12Threshold bytes or more.
func (wr wire) startPMD(t testing.TB) abServer {
	t.Helper()
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool { return negotiateDeflate(r, d, ab12Threshold) }
	return wr.start(t, h, testOptions())
}

// dialPMD connects to s, completes a handshake with the extension offers
// of offer (none when empty) and returns the Sec-WebSocket-Extensions of
// the 101 ("" when the server named none).
func (s abServer) dialPMD(t testing.TB, offer string) (*wsClient, string) {
	t.Helper()
	w := s.dialRaw(t)
	if offer == "" {
		w.Write(upgradeRequest("/ws"))
	} else {
		w.Write(upgradeRequest("/ws", "Sec-WebSocket-Extensions: "+offer))
	}
	status, head := w.ReadHead()
	if status != 101 {
		t.Fatalf("handshake answer:\n%s\nwant 101", head)
	}
	const name = "\r\nSec-WebSocket-Extensions: "
	_, ext, ok := strings.Cut(head, name)
	if !ok {
		return w, ""
	}
	ext, _, _ = strings.Cut(ext, "\r\n")
	return w, ext
}

// sendCompressed sends p as one message of op, compressed from an empty
// window of 2^15 bytes, its payload auto-fragmented in frames of frag bytes
// (one frame when frag is 0), RSV1 on the first.
func (w *wsClient) sendCompressed(op ws.OpCode, p []byte, frag int) {
	w.T.Helper()
	z, err := deflate.NewCompressor(deflate.DefaultLevel, deflate.MaxWindowBits)
	if err != nil {
		w.T.Fatal(err)
	}
	c, err := z.Compress(nil, p)
	if err != nil {
		w.T.Fatal(err)
	}
	if frag <= 0 {
		frag = len(c)
	}
	var out []byte
	for off := 0; ; off += frag {
		end := min(off+frag, len(c))
		fop, rsv := ws.OpContinuation, byte(0)
		if off == 0 {
			fop, rsv = op, rsv1
		}
		out = append(out, clientFrame(fop, end == len(c), rsv, c[off:end])...)
		if end == len(c) {
			break
		}
	}
	w.Write(out)
}

// expectEcho reads the server's message and checks that it is p of op,
// compressed (RSV1 on its first frame only) when compress is true and
// plain otherwise, with no back reference beyond 2^bits bytes.
func (w *wsClient) expectEcho(op ws.OpCode, p []byte, compress bool, bits int) {
	w.T.Helper()
	var payload []byte
	for i := 0; ; i++ {
		f, err := readServerFrame(w.R)
		if err != nil {
			w.T.Fatalf("reading frame %d of the echo: %v", i, err)
		}
		wantOp, wantRsv := ws.OpContinuation, byte(0)
		if i == 0 {
			wantOp = op
			if compress {
				wantRsv = rsv1
			}
		}
		if f.Op != wantOp || f.Rsv != wantRsv {
			w.T.Fatalf("frame %d of the echo: got %v; want op %d rsv %d", i, f, wantOp, wantRsv)
		}
		payload = append(payload, f.Payload...)
		if f.Fin {
			break
		}
	}
	switch {
	case compress && bits < deflate.MaxWindowBits:
		out, dist, err := puff.Inflate(append(payload, 0, 0, 0xff, 0xff))
		if err != nil {
			w.T.Fatalf("inflating the echo of %d bytes: %v", len(p), err)
		}
		if dist > 1<<bits {
			w.T.Fatalf("the echo of %d bytes refers %d bytes back; want at most 2^%d", len(p), dist, bits)
		}
		payload = out
	case compress:
		// DEFLATE itself refers no farther than 2^15 bytes back; the
		// library inflates faster than puff.
		payload = inflated(w.T, payload)
	}
	if !bytes.Equal(payload, p) {
		w.T.Fatalf("got an echo of %d bytes %q; want the %d bytes %q", len(payload), trunc(payload), len(p), trunc(p))
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 32)] }

// abSize is a row of the suite's MSG_SIZES: a payload length and the frame
// size of the client's auto-fragmentation (0: none).
type abSize struct{ n, frag int }

// ab12Sizes are MSG_SIZES in the suite's order: case 12.x.k and 13.x.k
// use ab12Sizes[k-1].
var ab12Sizes = []abSize{
	{16, 0}, {64, 0}, {256, 0}, {1024, 0}, {4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {65536, 0}, {131072, 0},
	{8192, 256}, {16384, 256}, {32768, 256}, {65536, 256}, {131072, 256},
	{131072, 1024}, {131072, 4096}, {131072, 32768},
}

// abData is a test data set of the suite's: what it is sent as, and 256 KiB
// of content like the suite's file, the same on every run. Text data is
// ASCII, so that every slice of it is UTF-8.
type abData struct {
	name string
	op   ws.OpCode
	data []byte
}

// abCorpus returns n bytes made by gen from a seeded generator.
func abCorpus(seed uint64, n int, gen func(r *rand.Rand, b *bytes.Buffer)) []byte {
	r := rand.New(rand.NewPCG(seed, 7692))
	var b bytes.Buffer
	for b.Len() < n {
		gen(r, &b)
	}
	return b.Bytes()[:n]
}

var abWords = strings.Fields("der die das und nicht ich zu ist mit sich des mir ein dem in den so sie wie was mein auf es du nur Faust Mephistopheles Gretchen Geist Welt")

// ab12Data are the five data sets of 12.1 to 12.5, in the suite's order.
func ab12Data() []abData {
	const n = 256 << 10
	return []abData{
		{"JSON", ws.OpText, abCorpus(1, n, func(r *rand.Rand, b *bytes.Buffer) {
			fmt.Fprintf(b, `{"id":%d,"name":"user%d","tags":["a%d","b"],"score":%d.%02d,"active":%t},`, r.IntN(1e6), r.IntN(500), r.IntN(20), r.IntN(1000), r.IntN(100), r.IntN(2) == 0)
		})},
		{"bitmap", ws.OpBinary, abCorpus(2, n, func(r *rand.Rand, b *bytes.Buffer) {
			run := byte(r.IntN(4) * 85)
			for range 1 + r.IntN(64) {
				b.WriteByte(run)
			}
		})},
		{"text", ws.OpBinary, abCorpus(3, n, func(r *rand.Rand, b *bytes.Buffer) {
			b.WriteString(abWords[r.IntN(len(abWords))])
			b.WriteString([]string{" ", " ", " ", ", ", ".\n"}[r.IntN(5)])
		})},
		{"HTML", ws.OpText, abCorpus(4, n, func(r *rand.Rand, b *bytes.Buffer) {
			fmt.Fprintf(b, "<tr class=\"row%d\"><td><a href=\"/item/%d\">%s</a></td><td>%d</td></tr>\n", r.IntN(2), r.IntN(1e5), abWords[r.IntN(len(abWords))], r.IntN(1e4))
		})},
		{"PDF", ws.OpBinary, abCorpus(5, n, func(r *rand.Rand, b *bytes.Buffer) {
			if r.IntN(3) == 0 { // a compressed stream: noise
				for range 512 {
					b.WriteByte(byte(r.Uint32()))
				}
				return
			}
			fmt.Fprintf(b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>\nendobj\n", r.IntN(900), r.IntN(900))
		})},
	}
}

// messages returns the count messages of n bytes that the suite's sendOne
// takes from d in turn, wrapping around the end of the data.
func (d abData) messages(n, count int) [][]byte {
	out := make([][]byte, count)
	at := 0
	for i := range out {
		m := make([]byte, 0, n)
		for len(m) < n {
			k := min(n-len(m), len(d.data)-at)
			m = append(m, d.data[at:at+k]...)
			at = (at + k) % len(d.data)
		}
		out[i] = m
	}
	return out
}

// pmdEcho is the body of a case of groups 12 and 13: ab12Messages messages
// of size sz from d, each compressed, sent and its echo checked, then a
// normal close.
func pmdEcho(w *wsClient, d abData, sz abSize, bits int) {
	w.T.Helper()
	for _, m := range d.messages(sz.n, ab12Messages) {
		w.sendCompressed(d.op, m, sz.frag)
		w.expectEcho(d.op, m, len(m) >= ab12Threshold, bits)
	}
	w.CloseNormally()
}

// TestAutobahn12Compression ports group 12, permessage-deflate with the
// suite's default offer: for each data set of 12.1 (JSON, text), 12.2
// (bitmap, binary), 12.3 (German prose, sent as binary), 12.4 (HTML,
// text) and 12.5 (PDF, binary), the 18 cases 12.x.1 to 12.x.18 of
// MSG_SIZES: payloads of 16 bytes to 128 KiB in one frame (12.x.1-10) and
// auto-fragmented in frames of 256 bytes (12.x.11-15), 1 KiB, 4 KiB and
// 32 KiB (12.x.16-18). Each case sends ab12Messages messages rather than
// the suite's 1000 (under the race detector one, and only 12.1 and 12.2
// run: race_test.go), compressed, and checks every echo byte for byte: the
// server compresses those of ab12Threshold bytes or more (RSV1 on the
// first frame) and sends the 16-byte ones plain. The data sets are
// generated look-alikes of the suite's files.
func TestAutobahn12Compression(t *testing.T) { autobahn12Compression(t, overTCP) }

func autobahn12Compression(t *testing.T, wr wire) {
	s := wr.startPMD(t)
	var cases []abCase
	for g, d := range ab12Data()[:ab12Sets] {
		for k, sz := range ab12Sizes {
			cases = append(cases, abCase{fmt.Sprintf("12.%d.%d", g+1, k+1), func(w *wsClient) {
				pmdEcho(w, d, sz, deflate.MaxWindowBits)
			}})
		}
	}
	runPMDCases(t, s, pmdOffer, pmdResponse, cases)
}

// runPMDCases runs cases as runCases does, each on a connection that
// offered offer and got want back.
func runPMDCases(t *testing.T, s abServer, offer, want string, cases []abCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			w, got := s.dialPMD(t, offer)
			if got != want {
				t.Fatalf("offer %q: got Sec-WebSocket-Extensions %q; want %q", offer, got, want)
			}
			c.run(w)
		})
	}
}
