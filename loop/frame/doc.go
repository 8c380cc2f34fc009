// Package frame is upgate's RFC 6455 codec for the server side of a
// WebSocket connection, used once the HTTP upgrade has been answered with
// 101 Switching Protocols.
//
// The package owns:
//
//   - decoding client frames from a connection's inbound bytes (Decoder),
//     with every check RFC 6455 asks of a server: masking (§5.1, §5.3),
//     reserved bits and opcodes (§5.2), control frame rules (§5.5),
//     fragmentation order (§5.4), UTF-8 of text messages and close reasons
//     (§5.6, §8.1), close codes (§7.4), and a message size limit (§10.4);
//   - assembling fragmented messages in pooled buffers (bytebufferpool);
//   - encoding server frames, which are never masked (AppendHeader,
//     AppendFrame, AppendClose, PutHeader);
//   - helpers shared with other layers: ValidCloseCode, ParseClose,
//     ParseHeader and UTF8Validator.
//
// The package is pure: functions and small types over []byte, no I/O, no
// goroutines and no package-level mutable state (its only package-level
// variables are read-only lookup tables and error values). It imports no
// gnet: the event loop reads a connection's bytes with Peek, passes them to
// Decoder.Next and discards what Next reports as consumed.
//
// # Close codes
//
// Every protocol violation is reported as a *ProtocolError whose Code is the
// status the server sends in its close frame before closing the connection:
// 1002 (protocol error), 1007 (invalid UTF-8) or 1009 (message too big).
//
// # Lifetime of returned slices
//
// Decoder.Next unmasks payloads in place and returns them without copying
// whenever a message is a single frame, and for every control frame: Payload
// and Reason then alias the caller's buffer. The payload of a fragmented
// message is assembled in a buffer taken from a bytebufferpool pool and owned
// by the Decoder. In both cases the slices are valid until the next call to
// Next or Release, and a slice into the caller's buffer only as long as the
// caller has not discarded or overwritten those bytes. Copy them to keep them
// longer.
//
// The Append functions follow the append convention: they return dst
// extended, reallocating only when its capacity is too small.
package frame
