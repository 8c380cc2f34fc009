package deflate

import (
	"errors"

	"github.com/upgate/upgate/parser"
)

// ExtensionName is the extension token of permessage-deflate
// (RFC 7692 §7).
//
// Offers are matched against it exactly. RFC 6455 §9.1 makes an
// extension-token a registered token (RFC 7230 §3.2.6: "token = 1*tchar"),
// and neither RFC 6455 nor RFC 7692 declares extension names or their
// parameter names case-insensitive, the way RFC 6455 §4.2.1 does for the
// "websocket" keyword of Upgrade. So "Permessage-Deflate" is another
// extension, which Negotiate skips, and "Server_No_Context_Takeover" is a
// parameter RFC 7692 does not define, for which the offer is declined.
// Every client in the wild writes the names in lower case, as registered.
const ExtensionName = "permessage-deflate"

// Window sizes, as the base-2 logarithm of the LZ77 sliding window
// (RFC 7692 §7.1.2: "between 8 to 15, inclusive").
const (
	minWindowBits = 8
	maxWindowBits = 15
)

// ErrConfigWindowBits is returned by [Config.Validate] for a MinWindowBits
// that is neither 0 nor within 8..15.
var ErrConfigWindowBits = errors.New("deflate: MinWindowBits must be 0 or within 8..15")

// Config is what the server is willing to agree to. The zero value is
// usable: no context takeover, every window size from 2^8 to 2^15.
type Config struct {
	// ContextTakeover lets the compression context outlive a message.
	//
	// When false (the default) the server answers every accepted offer with
	// server_no_context_takeover and client_no_context_takeover, which
	// RFC 7692 allows whatever the client offered: "A server MAY include
	// the "server_no_context_takeover" extension parameter in an extension
	// negotiation response even if the extension negotiation offer being
	// accepted by the extension negotiation response didn't include the
	// "server_no_context_takeover" extension parameter" (§7.1.1.1), and "A
	// server MAY include the "client_no_context_takeover" extension
	// parameter in an extension negotiation response" (§7.1.1.2). Each
	// message is then compressed and decompressed on its own, and no
	// connection keeps an LZ77 window between messages.
	//
	// When true the server keeps each context unless the offer names the
	// matching no_context_takeover parameter. A client's
	// client_no_context_takeover is a hint the server then takes up
	// (§7.1.1.2), so that it keeps no window the client does not use.
	ContextTakeover bool

	// MinWindowBits is the smallest server_max_window_bits the server
	// accepts: 8..15, 0 meaning 8. An offer that asks the server to
	// compress with a smaller window is declined, and Negotiate goes on to
	// the next offer: "A server declines an extension negotiation offer
	// with this parameter if the server doesn't support it" (§7.1.2.1).
	// Raise it to 9 for a compressor built on zlib, whose deflate does not
	// support a window of 2^8 and uses 2^9 instead.
	MinWindowBits int
}

// Validate reports whether c is a configuration Negotiate honours as
// written; Negotiate itself brings a MinWindowBits out of range back to
// the nearest bound.
func (c Config) Validate() error {
	if c.MinWindowBits != 0 && (c.MinWindowBits < minWindowBits || c.MinWindowBits > maxWindowBits) {
		return ErrConfigWindowBits
	}
	return nil
}

// minBits returns MinWindowBits within 8..15.
func (c Config) minBits() uint8 {
	switch {
	case c.MinWindowBits <= minWindowBits:
		return minWindowBits
	case c.MinWindowBits >= maxWindowBits:
		return maxWindowBits
	}
	return uint8(c.MinWindowBits)
}

// Bits of Params.flags.
const (
	serverNoContext uint8 = 1 << iota // server_no_context_takeover agreed
	clientNoContext                   // client_no_context_takeover agreed
	serverWindow                      // the response names server_max_window_bits
	clientWindow                      // the response names client_max_window_bits
)

// Params are the permessage-deflate parameters agreed for a connection,
// exactly as the response of [AppendResponse] states them. It takes three
// bytes; the zero value, like an offer of "permessage-deflate" alone
// accepted with context takeover, is context takeover both ways with
// windows of 2^15. Params values compare with ==.
type Params struct {
	flags  uint8
	server uint8 // server_max_window_bits when the response names it
	client uint8 // client_max_window_bits when the response names it
}

// ServerNoContextTakeover reports whether the server starts every message
// it sends with an empty LZ77 window (RFC 7692 §7.1.1.1).
func (p Params) ServerNoContextTakeover() bool { return p.flags&serverNoContext != 0 }

// ClientNoContextTakeover reports whether the client starts every message
// it sends with an empty LZ77 window (RFC 7692 §7.1.1.2), so that the
// server may decompress each message with a fresh inflater.
func (p Params) ClientNoContextTakeover() bool { return p.flags&clientNoContext != 0 }

// ServerMaxWindowBits returns the base-2 logarithm of the largest LZ77
// window the server may compress with: 8..15, 15 when the client set no
// limit (RFC 7692 §7.1.2.1).
func (p Params) ServerMaxWindowBits() int {
	if p.flags&serverWindow == 0 {
		return maxWindowBits
	}
	return int(p.server)
}

// ClientMaxWindowBits returns the base-2 logarithm of the largest LZ77
// window the client may compress with: 8..15, 15 when the server set no
// limit (RFC 7692 §7.1.2.2). A limit the client offered but the response
// does not repeat is a hint, not an agreement, and is not recorded.
func (p Params) ClientMaxWindowBits() int {
	if p.flags&clientWindow == 0 {
		return maxWindowBits
	}
	return int(p.client)
}

// Negotiate chooses the permessage-deflate offer to accept among the
// client's Sec-WebSocket-Extensions offers, walked in the client's order,
// which is its order of preference: "An element preceding another element
// has higher preference. It is recommended that a server accepts PMCEs
// with higher preference if the server supports them" (RFC 7692 §5).
// Offers of other extensions are skipped.
//
// RFC 7692 §7: "A server MUST decline an extension negotiation offer for
// this extension if any of the following conditions are met:
//
//   - The negotiation offer contains an extension parameter not defined
//     for use in an offer.
//   - The negotiation offer contains an extension parameter with an
//     invalid value.
//   - The negotiation offer contains multiple extension parameters with
//     the same name.
//   - The server doesn't support the offered configuration."
//
// The parameters defined for an offer are the four of §7.1. Invalid values
// are a value on server_no_context_takeover or client_no_context_takeover
// ("This extension parameter has no value"), a server_max_window_bits
// without a value, and a window size other than "8" to "15": §7.1.2 asks
// for "a decimal integer value without leading zeroes between 8 to 15,
// inclusive", so "08" and "+8" are invalid too. A quoted value counts as
// the token inside the quotes (RFC 6455 §9.1 allows either form). The only
// configuration the server does not support is a server_max_window_bits
// below cfg.MinWindowBits; context takeover is never a reason to decline,
// since the server may always answer no_context_takeover (see
// [Config.ContextTakeover]).
//
// The first offer that is not declined is accepted: ok is true and p holds
// what [AppendResponse] answers. ok is false and err nil when no offer was
// acceptable; the server then answers without the extension. err is the
// iterator's error when the header is malformed ([parser.ErrBadExtensions],
// status 400): every offer is read, also after the accepted one, so that a
// malformed header fails the handshake wherever the fault lies.
//
// Negotiate allocates nothing. It does not look at other extensions: a
// caller that accepts another extension must make sure it does not use the
// RSV1 bit as well (RFC 7692 §5, §6).
func Negotiate(it *parser.ExtensionIter, cfg Config) (p Params, ok bool, err error) {
	for it.Next() {
		if ok || string(it.Name()) != ExtensionName {
			continue
		}
		p, ok = negotiateOffer(it, cfg)
	}
	if err := it.Err(); err != nil {
		return Params{}, false, err
	}
	return p, ok, nil
}

// Bits of the parameters seen in one offer.
const (
	seenServerNoContext uint8 = 1 << iota
	seenClientNoContext
	seenServerWindow
	seenClientWindow
)

// negotiateOffer answers the offer under it, whose name was checked: ok is
// false when the offer is declined.
func negotiateOffer(it *parser.ExtensionIter, cfg Config) (p Params, ok bool) {
	var seen uint8
	var serverBits, clientBits uint8 // offered values; 0 when absent or valueless
	for {
		name, value, more := it.Param()
		if !more {
			break
		}
		var bit uint8
		switch string(name) {
		case "server_no_context_takeover":
			bit = seenServerNoContext
			if value != nil {
				return Params{}, false
			}
		case "client_no_context_takeover":
			bit = seenClientNoContext
			if value != nil {
				return Params{}, false
			}
		case "server_max_window_bits":
			// §7.1.2.1: "This parameter has a decimal integer value".
			bit = seenServerWindow
			if serverBits = windowBits(value); serverBits == 0 {
				return Params{}, false
			}
		case "client_max_window_bits":
			// §7.1.2.2: "This parameter has no value or a decimal integer
			// value".
			bit = seenClientWindow
			if value != nil {
				if clientBits = windowBits(value); clientBits == 0 {
					return Params{}, false
				}
			}
		default:
			return Params{}, false
		}
		if seen&bit != 0 {
			return Params{}, false
		}
		seen |= bit
	}

	if seen&seenServerWindow != 0 {
		if serverBits < cfg.minBits() {
			return Params{}, false
		}
		// §7.1.2.1: "A server accepts an extension negotiation offer with
		// this parameter by including the "server_max_window_bits"
		// extension parameter in the extension negotiation response to
		// send back to the client with the same or smaller value as the
		// offer." The server uses the value offered.
		p.flags |= serverWindow
		p.server = serverBits
	}
	// §7.1.1.1: "A server accepts an extension negotiation offer that
	// includes the "server_no_context_takeover" extension parameter by
	// including the "server_no_context_takeover" extension parameter in the
	// corresponding extension negotiation response".
	if !cfg.ContextTakeover || seen&seenServerNoContext != 0 {
		p.flags |= serverNoContext
	}
	if !cfg.ContextTakeover || seen&seenClientNoContext != 0 {
		p.flags |= clientNoContext
	}
	// §7.1.2.2: "If a received extension negotiation offer doesn't have
	// the "client_max_window_bits" extension parameter, the corresponding
	// extension negotiation response to the offer MUST NOT include the
	// "client_max_window_bits" extension parameter." When the offer has a
	// value, "the server may either ignore this value or use this value to
	// avoid allocating an unnecessarily big LZ77 sliding window by
	// including the "client_max_window_bits" extension parameter in the
	// corresponding extension negotiation response to the offer with a
	// value equal to or smaller than the received value."
	//
	// The server limits the client only when it keeps the client's window
	// between messages, and then to the value offered: its inflater for
	// the connection needs no more. Without client context takeover it
	// never does: each message is inflated on its own by an inflater the
	// connection does not keep, so the client's window costs the
	// connection no memory, and the response stays as short as it can.
	if clientBits != 0 && p.flags&clientNoContext == 0 {
		p.flags |= clientWindow
		p.client = clientBits
	}
	return p, true
}

// windowBits returns the window size a parameter value names, 8..15, or 0
// when the value is missing or not one of "8" to "15".
func windowBits(v []byte) uint8 {
	switch len(v) {
	case 1:
		if v[0] == '8' || v[0] == '9' {
			return v[0] - '0'
		}
	case 2:
		if v[0] == '1' && v[1] >= '0' && v[1] <= '5' {
			return 10 + v[1] - '0'
		}
	}
	return 0
}

// AppendResponse appends to dst the Sec-WebSocket-Extensions value that
// accepts the offer Negotiate chose, stating exactly what p holds, in a
// fixed order: the extension name, server_no_context_takeover,
// client_no_context_takeover, server_max_window_bits=N when the client
// limited the server's window (N is the window the server uses), and
// client_max_window_bits=N when the server limits the client's. For
// example:
//
//	permessage-deflate; server_no_context_takeover; client_no_context_takeover
//
// It allocates nothing when dst has room for the value: MaxResponseLen
// bytes always suffice.
func AppendResponse(dst []byte, p Params) []byte {
	dst = append(dst, ExtensionName...)
	if p.flags&serverNoContext != 0 {
		dst = append(dst, "; server_no_context_takeover"...)
	}
	if p.flags&clientNoContext != 0 {
		dst = append(dst, "; client_no_context_takeover"...)
	}
	if p.flags&serverWindow != 0 {
		dst = append(dst, "; server_max_window_bits="...)
		dst = appendBits(dst, p.server)
	}
	if p.flags&clientWindow != 0 {
		dst = append(dst, "; client_max_window_bits="...)
		dst = appendBits(dst, p.client)
	}
	return dst
}

// MaxResponseLen bounds the length of the value AppendResponse appends.
const MaxResponseLen = len(ExtensionName) +
	len("; server_no_context_takeover; client_no_context_takeover") +
	len("; server_max_window_bits=15; client_max_window_bits=15")

// appendBits appends a window size of 8..15 in decimal.
func appendBits(dst []byte, b uint8) []byte {
	if b >= 10 {
		dst = append(dst, '1')
		b -= 10
	}
	return append(dst, '0'+b)
}
