package gateway

import (
	"bytes"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/upgate/upgate/parser"
)

// retryAfterFull is the Retry-After of a 503 for Limits.MaxConnections, in
// seconds: capacity comes back as connections end, not on a schedule.
const retryAfterFull = 5

// retryAfterHeaders are "Retry-After: n\r\n" lines for n = 0..maxRetryHeader,
// built once so that a rejection allocates nothing.
const maxRetryHeader = 120

var retryAfterHeaders = func() (h [maxRetryHeader + 1]string) {
	for i := range h {
		h[i] = "Retry-After: " + strconv.Itoa(i) + "\r\n"
	}
	return h
}()

// retryAfter returns the Retry-After line for a wait, rounded up to whole
// seconds, at least one.
func retryAfter(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	if s <= maxRetryHeader {
		return retryAfterHeaders[s]
	}
	return "Retry-After: " + strconv.Itoa(s) + "\r\n"
}

// tokenBucket limits the rate of new connections: it holds up to burst
// tokens and gains rate tokens per second; each accepted handshake takes
// one. Safe for concurrent use; one short lock per handshake.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	if burst < 1 {
		burst = 1
	}
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take takes a token at time now. Without one it returns false and how long
// until the next token.
func (b *tokenBucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// acquireSlot reserves one of Limits.MaxConnections; releaseSlot gives it
// back when the connection ends (or the handshake is refused later on).
func (g *Gateway) acquireSlot() bool {
	if g.open.Add(1) > g.maxConns {
		g.open.Add(-1)
		return false
	}
	return true
}

func (g *Gateway) releaseSlot() { g.open.Add(-1) }

// trustedProxy reports whether a is in Config.TrustedProxies.
func (g *Gateway) trustedProxy(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the client's address: the immediate peer (the TCP
// peer, or the source of the PROXY protocol header), unless the peer is a
// trusted proxy; then the X-Forwarded-For hops are read from the right
// (the last line first) and the first hop that is not a trusted proxy is
// the client. When every hop is trusted the left-most is taken; a hop that
// is not an address ends the walk at the last trusted one, so that nothing
// a client wrote beyond the proxies is believed.
func (g *Gateway) clientAddr(peer netip.Addr, h *parser.Request) netip.Addr {
	a := peer.Unmap()
	if len(g.trusted) == 0 || !g.trustedProxy(a) {
		return a
	}
	for i := h.NumFields() - 1; i >= 0; i-- {
		if h.FieldID(i) != parser.FieldXForwardedFor {
			continue
		}
		_, v := h.Field(i)
		for v != nil {
			var hop []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				hop, v = v, nil
			}
			hop = bytes.TrimSpace(hop)
			if len(hop) == 0 {
				continue
			}
			ip, ok := parseHop(hop)
			if !ok {
				return a
			}
			if !g.trustedProxy(ip) {
				return ip
			}
			a = ip
		}
	}
	return a
}

// parseHop parses one X-Forwarded-For element: an address, possibly with a
// port or in brackets.
func parseHop(b []byte) (netip.Addr, bool) {
	if len(b) > 64 {
		return netip.Addr{}, false
	}
	var buf [64]byte
	s := buf[:copy(buf[:], b)]
	if a, err := netip.ParseAddr(string(s)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(s)); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(string(s[1 : len(s)-1])); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// parsePrefixes turns Config.TrustedProxies into prefixes; Validate has
// checked them.
func parsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}
