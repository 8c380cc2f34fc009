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
// imports no other package of the module.
//
// # Memory
//
// A [Request] records offsets, not pointers, so the caller may move or grow
// its input buffer between calls to [Request.Parse] as long as the bytes
// already given stay the same. The byte slices returned by Request's
// accessors are views into the buffer most recently passed to Parse: they are
// valid until that buffer is modified or released (for an event loop, until
// the bytes are discarded or the read callback returns). Keep them longer
// only by copying.
package parser
