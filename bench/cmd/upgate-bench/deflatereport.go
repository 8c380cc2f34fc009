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
	return deflateColumns(echoTable(gs), gs, base, "server CPU µs/message",
		[]string{"wire B/message sent", "received"}, []func(*Result) float64{wireSent, wireRecv}, wireBoth)
}

// deflateBroadcastTable is the broadcast table of a deflate-broadcast
// section, as deflateTable: the wire bytes per delivery, the server's CPU
// time per delivery against the broadcast without the extension.
func deflateBroadcastTable(gs, base []*group) *table {
	return deflateColumns(broadcastTable(gs), gs, base, "server CPU µs/delivery",
		[]string{"wire B/delivery"}, []func(*Result) float64{wireRecv}, wireRecv)
}

// deflateColumns inserts into t, whose rows are gs's, the extension
// negotiated and the wire columns (names, values) after the server; with
// base, the ratio of wire to the same server's baseline after them and the
// ratio of the server's CPU time after the column cpu. Rows that measured
// nothing (declined) are blanked.
func deflateColumns(t *table, gs, base []*group, cpu string, names []string, values []func(*Result) float64, wire func(*Result) float64) *table {
	at := slices.Index(t.head, cpu) + 1
	head := append([]string{"negotiated"}, names...)
	if base != nil {
		head = append(head, "wire vs no deflate")
	}
	t.head = slices.Insert(t.head, 1, head...)
	if base != nil {
		t.head = slices.Insert(t.head, at+len(head), "CPU vs no deflate")
	}
	for i, g := range gs {
		cols := []string{g.deflateNegotiated()}
		for _, v := range values {
			cols = append(cols, num(g.med(v), 0))
		}
		if base != nil {
			w, c := math.NaN(), math.NaN()
			if b := find(base, g.server); b != nil {
				w, c = b.med(wire), b.med(srvPerOp)
			}
			cols = append(cols, ratio(g.med(wire), w))
			t.rows[i] = slices.Insert(t.rows[i], at, ratio(g.med(srvPerOp), c))
		}
		t.rows[i] = slices.Insert(t.rows[i], 1, cols...)
		if g.med(func(r *Result) float64 { return float64(r.Messages) }) == 0 {
			blank(t, i, 2, "errors", "runs", "notes")
		}
	}
	return t
}

// deflateHoldTable is the hold table of a deflate-hold section, with the
// extension negotiated; with base (the same connections and echo without
// the extension), the server's bytes per connection over the same
// server's baseline.
func deflateHoldTable(gs, base []*group) *table {
	t := holdTable(gs)
	at := slices.Index(t.head, "server bytes/conn") + 2
	t.head = slices.Insert(t.head, 1, "negotiated")
	if base != nil {
		t.head = slices.Insert(t.head, at, "vs none")
	}
	for i, g := range gs {
		t.rows[i] = slices.Insert(t.rows[i], 1, g.deflateNegotiated())
		if base != nil {
			d := "–"
			if b := find(base, g.server); b != nil {
				if v := g.med(perConn) - b.med(perConn); !math.IsNaN(v) {
					d = fmt.Sprintf("%+.0f B", v)
				}
			}
			t.rows[i] = slices.Insert(t.rows[i], at, d)
		}
		if g.med(func(r *Result) float64 { return float64(r.Messages) }) == 0 {
			blank(t, i, 2, "runs")
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

// deflateBroadcastSettings describes the messages of a deflate-broadcast
// run.
func deflateBroadcastSettings(d *DeflateInfo) string {
	s := fmt.Sprintf("each message the 32-digit stamp followed by one of %d JSON messages of %.0f bytes on average, cycled, "+
		"published uncompressed as text", d.Messages, d.MessageBytes)
	if d.Offered == "" {
		return s + "; no extension offered (the baseline)"
	}
	return s + fmt.Sprintf("; the subscribers (and the publisher) offered %q, every delivery inflated and checked; "+
		"wire bytes are whole frames (header and payload)", d.Offered)
}
