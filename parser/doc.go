// Package parser reads HTTP/1.1 request heads and negotiates protocol
// upgrades without allocating.
//
// It owns the wire format of the opening handshake: the request line and
// header fields (RFC 9112), the Connection and Upgrade negotiation
// (RFC 9110 §7.8), the WebSocket opening handshake checks and accept key
// (RFC 6455 §4.2), and the bytes of the responses the gateway writes before
// a connection changes protocol (101, 426 and the 4xx/5xx errors).
//
// The package is pure: it works on byte slices owned by the caller, imports
// nothing from the event loop, keeps no package-level mutable state and
// never recovers from panics. Upper layers (loop, gateway) import it; it
// imports no other package of the module. It is fuzzed against net/http.
//
// # Strictness
//
// Peers that disagree on framing are how requests get smuggled, so the
// parser refuses what RFC 9112 merely tolerates:
//
//   - Framing: a bare LF line ending, a bare CR, obsolete line folding,
//     whitespace before a colon, control characters in a value, a missing
//     or repeated Host, Content-Length together with Transfer-Encoding, or
//     conflicting Content-Length lines are all 400. Empty lines before the
//     request line are skipped (RFC 9112 §2.2).
//   - Versions: HTTP/1.1 and HTTP/1.0 only; another well-formed version is
//     505, a malformed one 400, and the HTTP/2 connection preface is
//     recognised and refused with 505.
//   - Limits: the head is bounded by [Limits] ([DefaultMaxHeadBytes] and
//     [DefaultMaxFields] by default): over them the answer is 431, or 414
//     when the request line alone is too long.
//   - Upgrade: Connection must list "upgrade"; Upgrade lists are read in the
//     client's order of preference over any number of lines; an HTTP/1.0
//     request's Upgrade is ignored; "h2c" is never chosen
//     ([Request.SelectUpgrade]). A WebSocket handshake needs GET (else
//     405), one valid Sec-WebSocket-Key (else 400) and
//     Sec-WebSocket-Version 13 (missing: 400; another: 426 naming 13).
//
// # Memory
//
// A [Request] records offsets, not pointers, so the caller may move or grow
// its input buffer between calls to [Request.Parse] as long as the bytes
// already given stay the same. Parse resumes where it stopped: feeding a
// head one byte at a time costs O(n) in total. The byte slices returned by
// Request's accessors are views into the buffer most recently passed to
// Parse: they are valid until that buffer is modified or released (for an
// event loop, until the bytes are discarded or the read callback returns).
// Keep them longer only by copying.
//
// A whole server-side handshake — parse, negotiate, validate, accept key and
// 101 response — allocates nothing: go test -bench Upgrade -benchmem
// ./parser/ measures it on a corpus of real clients' requests, beside
// gobwas/ws's Upgrader on the same bytes. This is the parser's own cost; what
// a connection allocates in the event loop and the gateway is measured there.
package parser
