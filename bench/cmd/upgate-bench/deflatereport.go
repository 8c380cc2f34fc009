package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// deflateNegotiated is what the servers of g negotiated, as the client saw
// it.
func (g *group) deflateNegotiated() string {
	var out []string
	for _, r := range g.runs {
		if n := r.Deflate.negotiated(); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// wireSent, wireRecv and wireBoth are the frame bytes per echoed message.
var (
	wireSent = deflateField(func(d *DeflateInfo) float64 { return d.SentWireBytes })
	wireRecv = deflateField(func(d *DeflateInfo) float64 { return d.RecvWireBytes })
	wireBoth = deflateField(func(d *DeflateInfo) float64 { return d.SentWireBytes + d.RecvWireBytes })
)

func deflateField(f func(*DeflateInfo) float64) func(*Result) float64 {
	return func(r *Result) float64 {
		if r.Deflate == nil || r.Messages == 0 {
			return math.NaN()
		}
		return f(r.Deflate)
	}
}

// deflateTable is the echo table of a deflate-echo section, with the
// extension negotiated and the bytes on the wire per message; with base
// (the same messages without the extension), the server's CPU time and the
// wire bytes per message as ratios to the same server's baseline.
func deflateTable(gs, base []*group) *table {
	t := echoTable(gs)
	at := slices.Index(t.head, "server CPU µs/message") + 1
	head := []string{"negotiated", "wire B/message sent", "received"}
	if base != nil {
		head = append(head, "wire vs no deflate")
	}
	t.head = slices.Insert(t.head, 1, head...)
	if base != nil {
		t.head = slices.Insert(t.head, at+len(head), "CPU vs no deflate")
	}
	for i, g := range gs {
		cols := []string{g.deflateNegotiated(), num(g.med(wireSent), 0), num(g.med(wireRecv), 0)}
		b := find(base, g.server)
		if base != nil {
			w, c := math.NaN(), math.NaN()
			if b != nil {
				w, c = b.med(wireBoth), b.med(srvPerOp)
			}
			cols = append(cols, ratio(g.med(wireBoth), w))
			t.rows[i] = slices.Insert(t.rows[i], at, ratio(g.med(srvPerOp), c))
		}
		t.rows[i] = slices.Insert(t.rows[i], 1, cols...)
		if g.med(func(r *Result) float64 { return float64(r.Messages) }) == 0 {
			blank(t, i, 2, "errors", "runs", "notes")
		}
	}
	return t
}

// blank replaces the cells of row i from column from on with "–", but for
// the columns named keep: a server that declined measured nothing.
func blank(t *table, i, from int, keep ...string) {
	for j := from; j < len(t.head); j++ {
		if !slices.Contains(keep, t.head[j]) {
			t.rows[i][j] = "–"
		}
	}
}

// deflateSettings describes the client side of a deflate-echo run.
func deflateSettings(d *DeflateInfo) string {
	s := fmt.Sprintf("%d JSON messages of %.0f bytes on average, cycled, as text", d.Messages, d.MessageBytes)
	if d.Offered == "" {
		return s + "; no extension offered (the baseline)"
	}
	return s + fmt.Sprintf("; offered %q, the client compressing at level %d from an empty window "+
		"(loop/deflate), every echo inflated and checked; wire bytes are whole frames (header, masking key, payload)",
		d.Offered, d.Level)
}
