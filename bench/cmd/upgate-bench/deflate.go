package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/upgate/upgate/bench/internal/loadgen"
	"github.com/upgate/upgate/loop/deflate"
)

// Modes of -deflate.
const (
	// deflateNone sends the JSON messages without offering the extension:
	// the baseline of the other modes.
	deflateNone = "none"
	// deflateNoTakeover offers no context takeover in both directions.
	deflateNoTakeover = "no-takeover"
	// deflateTakeover lets the server keep its compression context.
	deflateTakeover = "takeover"
)

// deflateOffers are the Sec-WebSocket-Extensions values the client sends.
// Both ask for client_no_context_takeover: the client compresses every
// message from an empty window, so the server need not keep its inflate
// window. "takeover" leaves server_no_context_takeover out, so a server
// that supports it keeps its deflate context (and the client then inflates
// with the connection's window).
var deflateOffers = map[string]string{
	deflateNone:       "",
	deflateNoTakeover: "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
	deflateTakeover:   "permessage-deflate; client_no_context_takeover",
}

// errDeclined ends a -deflate run whose server answered a 101 without
// permessage-deflate; the command exits with status 3 then.
var errDeclined = errors.New("server declined permessage-deflate")

// whyDeclined is the error counted for such a connection.
const whyDeclined = "declined permessage-deflate"

// deflateLevel is the client's compression level (the fastest).
const deflateLevel = 1

// windowSize is the largest DEFLATE window (15 bits).
const windowSize = 1 << deflate.MaxWindowBits

// maxMessage bounds an inflated echo.
const maxMessage = 1 << 20

// DeflateInfo describes a -deflate run: what the client offered, what the
// servers answered, and the bytes on the wire per echoed message.
type DeflateInfo struct {
	// Mode is -deflate: none (the same messages, no extension offered),
	// no-takeover or takeover.
	Mode    string `json:"mode"`
	Offered string `json:"offered,omitempty"`
	Level   int    `json:"level,omitempty"`
	// Negotiated counts the Sec-WebSocket-Extensions values of the 101s.
	Negotiated map[string]int64 `json:"negotiated,omitempty"`
	// Declined counts 101s without permessage-deflate (an error).
	Declined int64 `json:"declined,omitempty"`
	// Messages is the number of distinct messages cycled, MessageBytes
	// their mean size before compression.
	Messages     int     `json:"messages"`
	MessageBytes float64 `json:"message_bytes"`
	// SentWireBytes and RecvWireBytes are the mean frame bytes (header,
	// masking key, payload) per echoed message, client to server and back.
	SentWireBytes float64 `json:"sent_wire_bytes"`
	RecvWireBytes float64 `json:"recv_wire_bytes"`
	// Uncompressed counts echoes the server sent without RSV1.
	Uncompressed int64 `json:"uncompressed,omitempty"`
}

// negotiated is the one-line description of the extensions negotiated.
func (i *DeflateInfo) negotiated() string {
	if i == nil {
		return ""
	}
	if i.Mode == deflateNone {
		return "none offered"
	}
	var out []string
	for v := range i.Negotiated {
		out = append(out, v)
	}
	if i.Declined > 0 {
		out = append(out, "declined")
	}
	return strings.Join(out, "; ")
}

// jsonMessages returns n deterministic JSON messages of about size bytes:
// objects with ids, names, timestamps and nested arrays, as an API would
// push them.
func jsonMessages(n, size int) [][]byte {
	type item struct {
		SKU   string   `json:"sku"`
		Name  string   `json:"name"`
		Qty   int      `json:"qty"`
		Price float64  `json:"price"`
		Tags  []string `json:"tags"`
	}
	type user struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	type message struct {
		ID      string    `json:"id"`
		Type    string    `json:"type"`
		Seq     int       `json:"seq"`
		Time    time.Time `json:"timestamp"`
		User    user      `json:"user"`
		Items   []item    `json:"items"`
		History []int64   `json:"history"`
		Note    string    `json:"note"`
	}
	rng := rand.New(rand.NewPCG(7692, 6455))
	words := []string{"alpha", "bravo", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "indigo", "juniper",
		"kepler", "lumen", "meadow", "nova", "orbit", "pixel", "quartz", "river", "sierra", "tundra"}
	word := func() string { return words[rng.IntN(len(words))] }
	types := []string{"order.created", "order.updated", "price.tick", "chat.message"}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		m := message{
			ID: fmt.Sprintf("%08x-%04x-%04x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff), Type: types[i%len(types)],
			Seq: 1000 + i, Time: base.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))),
			User: user{ID: rng.Int64N(1e9), Name: word() + " " + word()},
			Note: word() + " " + word() + " " + word(),
		}
		m.User.Email = strings.ReplaceAll(m.User.Name, " ", ".") + "@example.com"
		for range 4 + rng.IntN(4) {
			m.History = append(m.History, base.Unix()+rng.Int64N(86400))
		}
		var b []byte
		for {
			it := item{SKU: fmt.Sprintf("SKU-%06d", rng.IntN(1e6)), Name: word() + " " + word(),
				Qty: 1 + rng.IntN(9), Price: float64(rng.IntN(100000)) / 100}
			for range 1 + rng.IntN(3) {
				it.Tags = append(it.Tags, word())
			}
			m.Items = append(m.Items, it)
			next, _ := json.Marshal(m)
			if len(next) > size {
				break
			}
			b = next
		}
		out[i] = b
	}
	return out
}

// deflateClient compresses the echo client's messages and inflates the
// server's, for the engine's connections (one goroutine: the engine's).
type deflateClient struct {
	e    *engine
	info *DeflateInfo
	msgs [][]byte
	comp *deflate.Compressor
	dec  *deflate.Decompressor
	// With context takeover: a flate reader reset with the connection's
	// window for every message, and its input.
	fr   io.ReadCloser
	src  bytes.Reader
	in   []byte
	zbuf []byte
	out  []byte

	sent, recv int64 // frame bytes of the counted echoes
}

func newDeflateClient(e *engine, mode string) (*deflateClient, error) {
	offer, ok := deflateOffers[mode]
	if !ok {
		return nil, fmt.Errorf("-deflate must be none, no-takeover or takeover")
	}
	d := &deflateClient{e: e, msgs: jsonMessages(16, 2048),
		info: &DeflateInfo{Mode: mode, Offered: offer, Negotiated: map[string]int64{}}}
	total := 0
	for _, m := range d.msgs {
		total += len(m)
	}
	d.info.Messages, d.info.MessageBytes = len(d.msgs), float64(total)/float64(len(d.msgs))
	if mode == deflateNone {
		return d, nil
	}
	var err error
	if d.comp, err = deflate.NewCompressor(deflateLevel, deflate.MaxWindowBits); err != nil {
		return nil, err
	}
	d.info.Level = deflateLevel
	d.dec = deflate.NewDecompressor()
	d.fr = flate.NewReader(&d.src)
	return d, nil
}

// headers are the extra header lines of the upgrade request.
func (d *deflateClient) headers() []string {
	if d == nil || d.info.Offered == "" {
		return nil
	}
	return []string{"Sec-WebSocket-Extensions: " + d.info.Offered}
}

// upgraded checks the extension the 101 head of c negotiated; it returns
// why c cannot be used, or "".
func (d *deflateClient) upgraded(c *conn, head []byte) string {
	v, ok := loadgen.Header(head, "Sec-WebSocket-Extensions")
	if d.comp == nil {
		if ok {
			return "extension not offered: " + string(v)
		}
		return ""
	}
	if !ok || !bytes.HasPrefix(v, []byte("permessage-deflate")) {
		d.info.Declined++
		return whyDeclined
	}
	d.info.Negotiated[string(v)]++
	c.takeover = !bytes.Contains(v, []byte("server_no_context_takeover"))
	return ""
}

// send sends c's next message (by c.seq), compressed when negotiated.
func (d *deflateClient) send(c *conn) {
	msg := d.msgs[c.seq%uint64(len(d.msgs))]
	c.out = msg
	op, p := byte(loadgen.OpText), msg
	if d.comp != nil {
		var err error
		if d.zbuf, err = d.comp.Compress(d.zbuf[:0], msg); err != nil {
			d.e.ended(c, "compress: "+err.Error(), false)
			return
		}
		op, p = op|loadgen.RSV1, d.zbuf
	}
	c.wire = loadgen.FrameLen(len(p), true)
	d.e.send(c, op, p)
}

// check verifies the echo of c's message; it returns why it is wrong, or "".
func (d *deflateClient) check(c *conn, op byte, payload []byte) string {
	msg, why := d.inflate(c, op, payload)
	if why != "" {
		return why
	}
	if !bytes.Equal(msg, c.out) {
		return "echo mismatch"
	}
	if d.e.counting {
		d.sent += int64(c.wire)
		d.recv += int64(loadgen.FrameLen(len(payload), false))
	}
	return ""
}

// inflate returns the message of a data frame that c received: payload
// inflated when RSV1 is set (valid until the next call), else payload
// itself, counted as uncompressed when the extension was negotiated. It
// returns why the frame is wrong, or "".
func (d *deflateClient) inflate(c *conn, op byte, payload []byte) ([]byte, string) {
	if op&loadgen.RSV1 == 0 {
		if d.comp != nil && d.e.counting {
			d.info.Uncompressed++
		}
		return payload, ""
	}
	if d.comp == nil {
		return nil, "RSV1 without permessage-deflate"
	}
	var err error
	if c.takeover {
		err = d.inflateWindow(c, payload)
	} else {
		d.out, err = d.dec.Decompress(d.out[:0], payload, maxMessage)
	}
	if err != nil {
		return nil, "inflate: " + err.Error()
	}
	return d.out, ""
}

// emptyFinal is the tail removed by the sender (RFC 7692 §7.2.2) followed by
// an empty final stored block, so that a whole payload ends the stream.
var emptyFinal = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflateWindow inflates payload into d.out with c's window as the
// dictionary (the server kept its context), then slides the window.
func (d *deflateClient) inflateWindow(c *conn, payload []byte) error {
	d.in = append(append(d.in[:0], payload...), emptyFinal...)
	d.src.Reset(d.in)
	if err := d.fr.(flate.Resetter).Reset(&d.src, c.window); err != nil {
		return err
	}
	d.out = d.out[:0]
	for {
		if len(d.out) == cap(d.out) {
			d.out = append(d.out, 0)[:len(d.out)]
		}
		n, err := d.fr.Read(d.out[len(d.out):cap(d.out)])
		d.out = d.out[:len(d.out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(d.out) > maxMessage {
			return fmt.Errorf("message over %d bytes", maxMessage)
		}
	}
	c.window = append(c.window, d.out...)
	if n := len(c.window); n > windowSize {
		c.window = c.window[:copy(c.window, c.window[n-windowSize:])]
	}
	return nil
}

// finish records the run's deflate figures in r, for the messages echoed
// (or delivered): r's scenario gets the deflate- prefix.
func (d *deflateClient) finish(r *Result, messages int64) {
	r.Scenario = "deflate-" + r.Scenario
	r.Settings.Size = 0
	if messages > 0 {
		d.info.SentWireBytes = float64(d.sent) / float64(messages)
		d.info.RecvWireBytes = float64(d.recv) / float64(messages)
	}
	if len(d.info.Negotiated) == 0 {
		d.info.Negotiated = nil
	}
	r.Deflate = d.info
}
