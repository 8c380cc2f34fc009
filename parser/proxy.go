package parser

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// ProxyHeader is what a PROXY protocol header says about the connection an
// L4 proxy accepted on the client's behalf (PROXY protocol versions 1 and 2,
// as published by HAProxy).
type ProxyHeader struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local is set for a v2 LOCAL command or a v1 "UNKNOWN" protocol: the
	// proxy speaks for itself (health checks), and the connection's own
	// addresses stand.
	Local bool
	// Src and Dst are the client's and the proxy's listening address. They
	// are zero when Local is set or the v2 family is AF_UNIX / AF_UNSPEC.
	Src, Dst netip.AddrPort
}

// Limits of the PROXY protocol (its specification, §2.1 and §2.2).
const (
	proxyV1MaxLen = 107
	proxyV2MinLen = 16
	// ProxyV2MaxLen bounds a v2 header, TLVs included. The specification
	// allows up to 16 + 65535 bytes; no balancer sends more than a few
	// hundred, so more is refused rather than buffered.
	ProxyV2MaxLen = 16 + 2048
)

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// PROXY protocol errors. The connection is closed without a response: the
// peer is a proxy that did not speak the protocol it was configured for.
var (
	ErrNotProxy = &Error{Status: 400, Reason: "parser: PROXY protocol header expected", Body: "PROXY protocol header expected."}
	ErrBadProxy = &Error{Status: 400, Reason: "parser: malformed PROXY protocol header", Body: "Malformed PROXY protocol header."}
)

// ParseProxy parses the PROXY protocol header at the start of b into h. It
// returns the header's length, ErrNeedMore when b ends before the header
// does (it never needs more than ProxyV2MaxLen bytes to decide), or
// ErrNotProxy / ErrBadProxy. A v1 header naming TCP6 addresses allocates
// (net/netip parses them); everything else allocates nothing.
//
// Unlike Request.Parse it is not resumable: call it again with all the
// bytes. Headers are short and arrive in one segment in practice.
func ParseProxy(b []byte, h *ProxyHeader) (int, error) {
	*h = ProxyHeader{}
	switch {
	case len(b) >= len(proxyV2Sig) && bytes.Equal(b[:len(proxyV2Sig)], proxyV2Sig):
		return parseProxyV2(b, h)
	case len(b) >= len(proxyV1Prefix) && bytes.Equal(b[:len(proxyV1Prefix)], proxyV1Prefix):
		return parseProxyV1(b, h)
	case bytes.HasPrefix(proxyV2Sig, b) || bytes.HasPrefix(proxyV1Prefix, b):
		return 0, ErrNeedMore
	}
	return 0, ErrNotProxy
}

// parseProxyV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN[ anything]\r\n".
func parseProxyV1(b []byte, h *ProxyHeader) (int, error) {
	end := bytes.Index(b[:min(len(b), proxyV1MaxLen)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= proxyV1MaxLen {
			return 0, ErrBadProxy
		}
		return 0, ErrNeedMore
	}
	line := b[len(proxyV1Prefix):end]
	h.Version = 1
	proto, line := cutSpace(line)
	var v6 bool
	switch string(proto) {
	case "UNKNOWN":
		h.Local = true
		return end + 2, nil
	case "TCP4":
	case "TCP6":
		v6 = true
	default:
		return 0, ErrBadProxy
	}
	src, line := cutSpace(line)
	dst, line := cutSpace(line)
	sport, line := cutSpace(line)
	dport, rest := cutSpace(line)
	if rest != nil {
		return 0, ErrBadProxy
	}
	sa, ok1 := parseIP(src, v6)
	da, ok2 := parseIP(dst, v6)
	sp, ok3 := parsePort(sport)
	dp, ok4 := parsePort(dport)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, ErrBadProxy
	}
	h.Src, h.Dst = netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp)
	return end + 2, nil
}

// cutSpace splits b at its first space; rest is nil when there is none.
func cutSpace(b []byte) (field, rest []byte) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// parseIP parses a dotted-quad IPv4 address (no leading zeros) or, when v6
// is set, an IPv6 address without zone.
func parseIP(b []byte, v6 bool) (netip.Addr, bool) {
	if v6 {
		if len(b) == 0 || len(b) > 39 || bytes.IndexByte(b, '%') >= 0 || bytes.IndexByte(b, ':') < 0 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(string(b))
		return a, err == nil && a.Is6()
	}
	var ip [4]byte
	for i := range ip {
		var part []byte
		if i < 3 {
			j := bytes.IndexByte(b, '.')
			if j < 0 {
				return netip.Addr{}, false
			}
			part, b = b[:j], b[j+1:]
		} else {
			part = b
		}
		n, ok := parseSmallDecimal(part, 255)
		if !ok {
			return netip.Addr{}, false
		}
		ip[i] = byte(n)
	}
	return netip.AddrFrom4(ip), true
}

// parsePort parses a port number in 0–65535 without leading zeros.
func parsePort(b []byte) (uint16, bool) {
	n, ok := parseSmallDecimal(b, 65535)
	return uint16(n), ok
}

// parseSmallDecimal parses 1–5 digits without a leading zero, at most max.
func parseSmallDecimal(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c-'0' > 9 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

// parseProxyV2 reads the binary header: signature, version and command,
// family and transport, length, addresses, TLVs (skipped).
func parseProxyV2(b []byte, h *ProxyHeader) (int, error) {
	if len(b) < proxyV2MinLen {
		return 0, ErrNeedMore
	}
	verCmd, fam := b[12], b[13]
	n := proxyV2MinLen + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || n > ProxyV2MaxLen {
		return 0, ErrBadProxy
	}
	if len(b) < n {
		return 0, ErrNeedMore
	}
	h.Version = 2
	addr := b[proxyV2MinLen:n]
	switch verCmd & 0xf {
	case 0x0: // LOCAL: the proxy's own connection, addresses ignored
		h.Local = true
		return n, nil
	case 0x1: // PROXY
	default:
		return 0, ErrBadProxy
	}
	switch fam {
	case 0x11: // TCP over IPv4
		if len(addr) < 12 {
			return 0, ErrBadProxy
		}
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[0:4])), binary.BigEndian.Uint16(addr[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[4:8])), binary.BigEndian.Uint16(addr[10:12]))
	case 0x21: // TCP over IPv6
		if len(addr) < 36 {
			return 0, ErrBadProxy
		}
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[0:16])), binary.BigEndian.Uint16(addr[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[16:32])), binary.BigEndian.Uint16(addr[34:36]))
	case 0x00, 0x31: // AF_UNSPEC, or a UNIX stream socket: nothing to report
		h.Local = true
	default: // UDP and unknown families have no place on a TCP listener
		return 0, ErrBadProxy
	}
	return n, nil
}
