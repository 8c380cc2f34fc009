//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"sync/atomic"

	"github.com/gobwas/ws"
)

// rejectStatuses are the statuses counted one by one; others are counted
// together under status 0.
var rejectStatuses = [...]int{400, 401, 403, 404, 405, 408, 413, 414, 426, 429, 431, 500, 501, 502, 503, 504, 505}

func rejectIndex(status int) int {
	for i, s := range rejectStatuses {
		if s == status {
			return i
		}
	}
	return len(rejectStatuses)
}

// closeIndex maps close codes 1000-1015 to 0-15 and every other code to 16.
func closeIndex(code ws.StatusCode) int {
	if code >= 1000 && code <= 1015 {
		return int(code - 1000)
	}
	return 16
}

// Stats are the counters of one event loop. Every field is atomic: the loop
// updates them as events happen and any goroutine may read them. A Server
// keeps one Stats per loop (no cache line is shared between loops on the
// hot path); Server.Stats sums them.
type Stats struct {
	ConnsOpen         atomic.Int64  // TCP connections open now
	ConnsTotal        atomic.Uint64 // TCP connections accepted
	TLSConnsOpen      atomic.Int64  // of ConnsOpen, those of the TLS listener
	TLSConnsTotal     atomic.Uint64 // of ConnsTotal, those of the TLS listener
	WebSocketsOpen    atomic.Int64  // connections past the 101, not yet closed
	StreamsOpen       atomic.Int64  // of WebSocketsOpen, those switched to a byte stream (Decision.Switch)
	StreamsTotal      atomic.Uint64 // connections switched to a byte stream
	Handoffs          atomic.Uint64 // connections handed to the Handler after their 101 (Decision.Handoff)
	HandshakesOK      atomic.Uint64 // 101 responses written
	HTTPResponses     atomic.Uint64 // plain responses written by ActRespond
	MessagesIn        atomic.Uint64 // messages delivered to OnMessage
	BytesIn           atomic.Uint64 // payload bytes of those messages, as delivered (inflated)
	MessagesOut       atomic.Uint64 // data frames sent
	BytesOut          atomic.Uint64 // payload bytes of those frames, before Write or Send compressed them
	PingsSent         atomic.Uint64 // server pings
	ProtocolErrors    atomic.Uint64 // connections failed for violating RFC 6455
	SlowConsumers     atomic.Uint64 // connections closed with 1008 for MaxOutbound
	HandshakeTimeouts atomic.Uint64 // heads not complete within HandshakeTimeout
	IdleTimeouts      atomic.Uint64 // connections closed for IdleTimeout
	PongTimeouts      atomic.Uint64 // connections dropped for PongTimeout
	CloseTimeouts     atomic.Uint64 // close handshakes or lingers cut short
	ProxyErrors       atomic.Uint64 // connections closed for a missing or malformed PROXY header
	DeadlinesDeferred atomic.Uint64 // due deadlines put off because input waited unread
	Deferred          atomic.Uint64 // handshakes whose decision OnRequest put off (Decision.Defer)
	Waiting           atomic.Int64  // deferred handshakes waiting for Conn.Resolve now
	FDRefused         atomic.Uint64 // connections answered 503 at once to keep descriptors under the limit
	TLSHandshakes     atomic.Uint64 // TLS handshakes completed
	TLSFailures       atomic.Uint64 // TLS handshakes that failed or were cut short (the connection closed), for every reason
	TLSRefused        atomic.Uint64 // connections closed at their ClientHello: every TLS handshake slot was taken
	TLSHandovers      atomic.Uint64 // TLS 1.3 connections handed over to the loop's record layer
	TLSCipherReleases atomic.Uint64 // idle connections that dropped their ciphers (Options.TLSCipherIdle)

	rejected [len(rejectStatuses) + 1]atomic.Uint64
	closes   [17]atomic.Uint64
	tlsFail  [NumTLSFailures]atomic.Uint64
	lag      [len(lagBounds) + 1]atomic.Uint64 // see recordLag
	lagSum   atomic.Int64                      // nanoseconds

	_ [64]byte // keeps the next loop's counters off this cache line
}

func (s *Stats) reject(status int)         { s.rejected[rejectIndex(status)].Add(1) }
func (s *Stats) closed(code ws.StatusCode) { s.closes[closeIndex(code)].Add(1) }

func (s *Stats) tlsFailed(r TLSFailure) {
	s.TLSFailures.Add(1)
	s.tlsFail[r].Add(1)
}

// Snapshot is a point-in-time sum of the Stats of every loop.
type Snapshot struct {
	ConnsOpen, WebSocketsOpen int64
	// StreamsOpen is the part of WebSocketsOpen switched to another
	// protocol (Decision.Switch); StreamsTotal counts them all, Handoffs
	// the connections handed to the Handler (Decision.Handoff).
	StreamsOpen                             int64
	StreamsTotal, Handoffs                  uint64
	ConnsTotal, HandshakesOK, HTTPResponses uint64
	// TLSConnsOpen and TLSConnsTotal are the part of ConnsOpen and
	// ConnsTotal that came through the TLS listener (Options.TLS); the
	// rest came through the plain one (see PlainConnsOpen).
	TLSConnsOpen                               int64
	TLSConnsTotal                              uint64
	MessagesIn, BytesIn, MessagesOut, BytesOut uint64
	PingsSent, ProtocolErrors, SlowConsumers   uint64
	HandshakeTimeouts, IdleTimeouts            uint64
	PongTimeouts, CloseTimeouts                uint64
	ProxyErrors, DeadlinesDeferred             uint64
	// ListenerPauses counts the times the listener stopped taking
	// connections because the descriptor limit was near (see the package
	// doc, File descriptors).
	ListenerPauses uint64
	Deferred       uint64
	Waiting        int64
	FDRefused      uint64
	// TLSHandshakes, TLSFailures and TLSRefused count TLS handshakes
	// completed, failed, and refused for want of a slot
	// (Options.MaxTLSHandshakes).
	TLSHandshakes, TLSFailures, TLSRefused uint64
	// TLSHandovers counts the TLS 1.3 connections handed over to the
	// loop's record layer after their handshake, TLSCipherReleases the
	// times an idle one dropped its ciphers (Options.TLSCipherIdle).
	TLSHandovers, TLSCipherReleases uint64
	// TLSFailuresBy counts the failed TLS handshakes by reason: their
	// sum is TLSFailures.
	TLSFailuresBy [NumTLSFailures]uint64
	// Rejected counts error responses (4xx and 5xx, including 426 and
	// parser rejections) by status; status 0 gathers uncommon statuses.
	Rejected map[int]uint64
	// Closes counts WebSocket closes by the code OnClose reported; code 0
	// gathers codes outside 1000-1015.
	Closes map[ws.StatusCode]uint64
}

// PlainConnsOpen returns the connections open on the plain listener.
// The counters are read one by one while connections come and go: the
// difference is never negative.
func (p *Snapshot) PlainConnsOpen() int64 { return max(p.ConnsOpen-p.TLSConnsOpen, 0) }

// PlainConnsTotal returns the connections the plain listener accepted.
func (p *Snapshot) PlainConnsTotal() uint64 {
	if p.ConnsTotal < p.TLSConnsTotal {
		return 0
	}
	return p.ConnsTotal - p.TLSConnsTotal
}

func (s *Stats) addTo(p *Snapshot) {
	p.ConnsOpen += s.ConnsOpen.Load()
	p.TLSConnsOpen += s.TLSConnsOpen.Load()
	p.TLSConnsTotal += s.TLSConnsTotal.Load()
	p.WebSocketsOpen += s.WebSocketsOpen.Load()
	p.StreamsOpen += s.StreamsOpen.Load()
	p.StreamsTotal += s.StreamsTotal.Load()
	p.Handoffs += s.Handoffs.Load()
	p.ConnsTotal += s.ConnsTotal.Load()
	p.HandshakesOK += s.HandshakesOK.Load()
	p.HTTPResponses += s.HTTPResponses.Load()
	p.MessagesIn += s.MessagesIn.Load()
	p.BytesIn += s.BytesIn.Load()
	p.MessagesOut += s.MessagesOut.Load()
	p.BytesOut += s.BytesOut.Load()
	p.PingsSent += s.PingsSent.Load()
	p.ProtocolErrors += s.ProtocolErrors.Load()
	p.SlowConsumers += s.SlowConsumers.Load()
	p.HandshakeTimeouts += s.HandshakeTimeouts.Load()
	p.IdleTimeouts += s.IdleTimeouts.Load()
	p.PongTimeouts += s.PongTimeouts.Load()
	p.CloseTimeouts += s.CloseTimeouts.Load()
	p.ProxyErrors += s.ProxyErrors.Load()
	p.DeadlinesDeferred += s.DeadlinesDeferred.Load()
	p.Deferred += s.Deferred.Load()
	p.Waiting += s.Waiting.Load()
	p.FDRefused += s.FDRefused.Load()
	p.TLSHandshakes += s.TLSHandshakes.Load()
	p.TLSFailures += s.TLSFailures.Load()
	p.TLSRefused += s.TLSRefused.Load()
	p.TLSHandovers += s.TLSHandovers.Load()
	p.TLSCipherReleases += s.TLSCipherReleases.Load()
	for i := range s.tlsFail {
		p.TLSFailuresBy[i] += s.tlsFail[i].Load()
	}
	for i := range s.rejected {
		if n := s.rejected[i].Load(); n != 0 {
			status := 0
			if i < len(rejectStatuses) {
				status = rejectStatuses[i]
			}
			p.Rejected[status] += n
		}
	}
	for i := range s.closes {
		if n := s.closes[i].Load(); n != 0 {
			code := ws.StatusCode(0)
			if i < 16 {
				code = ws.StatusCode(1000 + i)
			}
			p.Closes[code] += n
		}
	}
}
