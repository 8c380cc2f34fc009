package main

import (
	"slices"
	"strings"
)

// baseScenario is r's scenario without the tls- prefix of a wss:// run or
// the deflate- prefix of a -deflate run.
func baseScenario(r *Result) string {
	return strings.TrimPrefix(strings.TrimPrefix(r.Scenario, "tls-"), "deflate-")
}

// section is the report section of r: its scenario, and for a TLS run the
// key shares the client offered too (tls-handshake-x25519).
func section(r *Result) string {
	if r.TLS != nil {
		return r.Scenario + "-" + r.TLS.KeyShares
	}
	if r.Deflate != nil {
		return r.Scenario + "-" + r.Deflate.Mode
	}
	if r.Tunnel != nil {
		return tunnelSection(r)
	}
	return r.Scenario
}

// tlsSettings describes the client side of a TLS run.
func tlsSettings(i *TLSInfo) string {
	s := "TLS 1.3 only, every handshake a full one (no session cache), key shares offered: "
	if i.KeyShares == "x25519" {
		s += "X25519 only"
	} else {
		s += "Go's defaults (X25519MLKEM768 and X25519, as current browsers send)"
	}
	if i.Verified {
		return s + "; the server's ECDSA P-256 certificate verified"
	}
	return s + "; certificate not verified"
}

// negotiated is what the servers of g negotiated, as the client saw it.
func (g *group) negotiated() string {
	var out []string
	for _, r := range g.runs {
		if n := r.TLS.negotiated(); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// withNegotiated inserts a column "negotiated" after the server's name.
func withNegotiated(t *table, gs []*group) *table {
	t.head = slices.Insert(t.head, 1, "negotiated")
	for i := range t.rows {
		t.rows[i] = slices.Insert(t.rows[i], 1, gs[i].negotiated())
	}
	return t
}

func tlsHandshakeTable(gs []*group) *table {
	return withNegotiated(handshakeTableVs(gs, "tlsfloor"), gs)
}

func tlsHoldTable(gs []*group) *table { return withNegotiated(holdTable(gs), gs) }

func tlsEchoTable(gs []*group) *table { return withNegotiated(echoTable(gs), gs) }
