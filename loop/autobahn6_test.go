//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// utf8Vector is one text payload of group 6 with its verdict.
type utf8Vector struct {
	id    string
	hex   string
	valid bool
}

func (v utf8Vector) bytes() []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(v.hex, " ", ""))
	if err != nil {
		panic(v.id + ": " + err.Error())
	}
	return b
}

// kosme is "κόσμε", the suite's favourite.
const kosme = "cebae1bdb9cf83cebcceb5"

// utf8Vectors follows the sections of group 6 (after Markus Kuhn's UTF-8
// decoder stress test): valid text in several scripts, boundary code points,
// noncharacters (valid), and every family of malformed input.
var utf8Vectors = []utf8Vector{
	{"6.2.1", hex.EncodeToString([]byte("Hello-µ@ßöäüàá-UTF-8!!")), true},
	{"6.3.1", kosme + "eda080656469746564", false},
	{"6.5.1", kosme, true},
	{"6.5.2", hex.EncodeToString([]byte("Привет, мир! 你好，世界 🙂 שלום")), true},
	{"6.6.1", kosme[:2], false},
	{"6.6.2", kosme[:4], true},
	{"6.6.3", kosme[:6], false},
	{"6.6.4", kosme[:8], false},
	{"6.6.5", kosme[:10], true},
	{"6.6.6", kosme[:12], false},
	{"6.6.7", kosme[:14], true},
	{"6.6.8", kosme[:16], false},
	{"6.6.9", kosme[:18], true},
	{"6.6.10", kosme[:20], false},
	{"6.6.11", kosme, true},
	// First and last sequences of each length.
	{"6.7.1", "00", true},
	{"6.7.2", "c280", true},
	{"6.7.3", "e0a080", true},
	{"6.7.4", "f0908080", true},
	{"6.8.1", "f888808080", false},
	{"6.8.2", "fc8480808080", false},
	{"6.9.1", "7f", true},
	{"6.9.2", "dfbf", true},
	{"6.9.3", "efbfbf", true},
	{"6.9.4", "f48fbfbf", true},
	{"6.10.1", "f7bfbfbf", false},
	{"6.10.2", "fbbfbfbfbf", false},
	{"6.10.3", "fdbfbfbfbfbf", false},
	// Other boundaries.
	{"6.11.1", "ed9fbf", true},
	{"6.11.2", "ee8080", true},
	{"6.11.3", "efbfbd", true},
	{"6.11.4", "f48fbfbf", true},
	{"6.11.5", "f4908080", false},
	// Unexpected continuation bytes.
	{"6.12.1", "80", false},
	{"6.12.2", "bf", false},
	{"6.12.3", "80bf", false},
	{"6.12.4", "80bf80", false},
	{"6.12.5", "80bf80bf", false},
	{"6.12.6", "80bf80bf80", false},
	{"6.12.7", "80bf80bf80bf", false},
	{"6.12.8", "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe", false},
	// Lonely start characters.
	{"6.13.1", "c020c120c220c320c420c520c620c720c820c920ca20cb20cc20cd20ce20cf20d020d120d220d320d420d520d620d720d820d920da20db20dc20dd20de20", false},
	{"6.13.2", "e020e120e220e320e420e520e620e720e820e920ea20eb20ec20ed20ee20", false},
	{"6.13.3", "f020f120f220f320f420f520f620", false},
	{"6.13.4", "f820f920fa20", false},
	{"6.13.5", "fc20", false},
	// Sequences with the last byte missing.
	{"6.14.1", "c0", false},
	{"6.14.2", "e080", false},
	{"6.14.3", "f08080", false},
	{"6.14.4", "f8808080", false},
	{"6.14.5", "fc80808080", false},
	{"6.14.6", "df", false},
	{"6.14.7", "efbf", false},
	{"6.14.8", "f7bfbf", false},
	{"6.14.9", "fbbfbfbf", false},
	{"6.14.10", "fdbfbfbfbf", false},
	{"6.15.1", "c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf", false},
	// Impossible bytes.
	{"6.16.1", "fe", false},
	{"6.16.2", "ff", false},
	{"6.16.3", "fefeffff", false},
	// Overlong ASCII '/', maximum overlong sequences, overlong NUL.
	{"6.17.1", "c0af", false},
	{"6.17.2", "e080af", false},
	{"6.17.3", "f08080af", false},
	{"6.17.4", "f8808080af", false},
	{"6.17.5", "fc80808080af", false},
	{"6.18.1", "c1bf", false},
	{"6.18.2", "e09fbf", false},
	{"6.18.3", "f08fbfbf", false},
	{"6.18.4", "f887bfbfbf", false},
	{"6.18.5", "fc83bfbfbfbf", false},
	{"6.19.1", "c080", false},
	{"6.19.2", "e08080", false},
	{"6.19.3", "f0808080", false},
	{"6.19.4", "f880808080", false},
	{"6.19.5", "fc8080808080", false},
	// UTF-16 surrogates, single and paired.
	{"6.20.1", "eda080", false},
	{"6.20.2", "edadbf", false},
	{"6.20.3", "edae80", false},
	{"6.20.4", "edafbf", false},
	{"6.20.5", "edb080", false},
	{"6.20.6", "edbe80", false},
	{"6.20.7", "edbfbf", false},
	{"6.21.1", "eda080edb080", false},
	{"6.21.2", "eda080edbfbf", false},
	{"6.21.3", "edadbfedb080", false},
	{"6.21.4", "edadbfedbfbf", false},
	{"6.21.5", "edae80edb080", false},
	{"6.21.6", "edae80edbfbf", false},
	{"6.21.7", "edafbfedb080", false},
	{"6.21.8", "edafbfedbfbf", false},
	// Noncharacters are valid UTF-8.
	{"6.22.1", "efbfbe", true},
	{"6.22.2", "efbfbf", true},
	{"6.22.3", "f09fbfbe", true},
	{"6.22.4", "f09fbfbf", true},
	{"6.22.5", "f0afbfbe", true},
	{"6.22.6", "f0afbfbf", true},
	{"6.22.7", "f48fbfbe", true},
	{"6.22.8", "efb790", true},
	{"6.22.9", "efb7af", true},
	{"6.23.1", "efbfb9", true},
	{"6.23.2", "efbfba", true},
	{"6.23.3", "efbfbb", true},
	{"6.23.4", "efbfbc", true},
	{"6.23.5", "efbfbd", true},
	{"6.23.6", "efbfbe", true},
	{"6.23.7", "efbfbf", true},
}

// TestAutobahn6UTF8 ports group 6: every vector is sent as one frame, as
// 1-byte fragments (continuation frames, so the validator runs across frame
// boundaries and inside code points), and as one frame written one byte
// at a time. Valid text is echoed; invalid text fails with 1007.
func TestAutobahn6UTF8(t *testing.T) { autobahn6UTF8(t, overTCP) }

func autobahn6UTF8(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	var cases []abCase
	cases = append(cases,
		abCase{"6.1.1", func(w *wsClient) {
			w.Write(text(""))
			w.ExpectMessage(ws.OpText, nil)
			w.CloseNormally()
		}},
		abCase{"6.1.2", func(w *wsClient) {
			w.Write(firstFrag(ws.OpText, ""), cont(false, ""), cont(true, ""))
			w.ExpectMessage(ws.OpText, nil)
			w.CloseNormally()
		}},
		abCase{"6.1.3", func(w *wsClient) {
			w.Write(firstFrag(ws.OpText, ""), cont(false, "middle frame payload"), cont(true, ""))
			w.ExpectMessage(ws.OpText, []byte("middle frame payload"))
			w.CloseNormally()
		}},
	)
	for _, v := range utf8Vectors {
		p := v.bytes()
		check := func(w *wsClient) {
			if v.valid {
				w.ExpectMessage(ws.OpText, p)
				w.CloseNormally()
			} else {
				w.ExpectClose(ws.StatusInvalidFramePayloadData)
			}
		}
		cases = append(cases,
			abCase{v.id + "/frame", func(w *wsClient) {
				w.Write(msg(ws.OpText, p))
				check(w)
			}},
			abCase{v.id + "/fragments", func(w *wsClient) {
				var frames [][]byte
				for i := range p {
					op := ws.OpContinuation
					if i == 0 {
						op = ws.OpText
					}
					frames = append(frames, clientFrame(op, i == len(p)-1, 0, p[i:i+1]))
				}
				w.Write(frames...)
				check(w)
			}},
			abCase{v.id + "/chopped", func(w *wsClient) {
				w.chopped(msg(ws.OpText, p))
				check(w)
			}},
		)
	}
	runCases(t, s, cases)
}

// TestAutobahn6FailFast ports 6.4: invalid UTF-8 fails the connection as
// soon as the invalid byte arrives, before the rest of the message (6.4.1,
// 6.4.2: a later fragment is never sent) and even before the rest of the
// frame (6.4.3, 6.4.4: the frame is incomplete when the server must fail).
func TestAutobahn6FailFast(t *testing.T) { autobahn6FailFast(t, overTCP) }

func autobahn6FailFast(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	k, _ := hex.DecodeString(kosme)
	bad, _ := hex.DecodeString("f4908080")
	edited := []byte("edited")
	// The pauses between two writes pace the client: the server reads the
	// bytes before the invalid ones on their own, and must then fail on the
	// read that brings the invalid byte, with its UTF-8 state carried over.
	cases := []abCase{
		{"6.4.1", func(w *wsClient) {
			w.Write(clientFrame(ws.OpText, false, 0, k))
			time.Sleep(20 * time.Millisecond)
			w.Write(clientFrame(ws.OpContinuation, false, 0, bad))
			w.ExpectClose(ws.StatusInvalidFramePayloadData) // third fragment never sent
		}},
		{"6.4.2", func(w *wsClient) {
			w.Write(clientFrame(ws.OpText, false, 0, append(append([]byte(nil), k...), bad[0])))
			time.Sleep(20 * time.Millisecond)
			w.Write(clientFrame(ws.OpContinuation, false, 0, bad[1:]))
			w.ExpectClose(ws.StatusInvalidFramePayloadData)
		}},
	}
	for i, split := range []int{len(k), len(k) + 1} {
		cases = append(cases, abCase{fmt.Sprintf("6.4.%d", 3+i), func(w *wsClient) {
			payload := append(append(append([]byte(nil), k...), bad...), edited...)
			f := msg(ws.OpText, payload)
			hdr := len(f) - len(payload)
			w.Write(f[:hdr+split])
			time.Sleep(20 * time.Millisecond)
			w.Write(f[hdr+split : hdr+len(k)+len(bad)])
			// The frame still lacks "edited": the server must not wait for it.
			w.ExpectClose(ws.StatusInvalidFramePayloadData)
		}})
	}
	runCases(t, s, cases)
}
