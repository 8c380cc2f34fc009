// Package deflate is upgate's permessage-deflate codec (RFC 7692) without
// context takeover: it compresses and inflates the payloads of whole
// messages. It is pure: no I/O, no goroutines, nothing of upgate's and no
// gnet; DEFLATE itself is github.com/klauspost/compress/flate.
//
// # The transformation (RFC 7692 §7.2)
//
// A compressed message's payload is DEFLATE data (RFC 1951). The sender
// compresses the message and flushes it with an empty non-final stored
// block, which ends on a byte boundary with its LEN and NLEN, 00 00 ff ff;
// it removes those four bytes (§7.2.1). The receiver appends them back and
// inflates (§7.2.2). [Compressor.Compress] does the former: it resets the
// encoder, writes the message, sync-flushes and drops the tail, so the empty
// message is the single byte 00 (§7.2.3.6). [Decompressor.Decompress] does
// the latter: it reads the payload, then the tail, then an empty final
// block of its own so that the end of a complete payload reads as a clean
// end of stream and a payload cut inside a block fails with [ErrCorrupt]. A message may also end with a final block
// (§7.2.3.4); what follows it is ignored.
//
// # No context takeover
//
// The server answers server_no_context_takeover and
// client_no_context_takeover: each message is compressed and inflated from
// an empty window. A codec then holds nothing of a connection between two
// messages, so codecs do not live in connections: an idle connection that
// negotiated permessage-deflate costs no more than one that did not, instead
// of a Compressor and a Decompressor (about 1 MB and 37 KiB, below) each.
// The price is compression: every message starts without history.
//
// # Pools
//
// An event loop runs one callback at a time, so a [Loop] holds one
// Decompressor and one Compressor per (level, window bits) in use, created
// on first use and shared by all the loop's connections. A message
// compressed off the loops, such as a publish compressed once for many
// connections, takes a Compressor from a [Pool], a sync.Pool per (level,
// window bits), and puts it back.
//
// # Windows and levels
//
// server_max_window_bits and client_max_window_bits (§7.1.2) range over
// 8..15, a window of 2^bits bytes. A Decompressor always keeps a 32 KiB
// window, enough for any. A Compressor with 15 bits uses the encoder of its
// level; with fewer, flate.NewWriterWindow's windowed encoder (comparable
// to level 5, for levels 1..9), which takes any window from 32 bytes to
// 32 KiB and refuses every match farther than the window: 2^8 = 256 bytes is
// a legal window for it, unlike for zlib, whose raw deflate refuses 8 bits.
// Tests check every back reference against the window with a reference
// decoder.
//
// # Limits and errors
//
// Decompress takes the largest message the caller accepts and stops as soon
// as the output would exceed it, with [ErrTooLarge] (close code 1009): a
// small payload that would inflate to gigabytes costs at most the limit plus
// the library's 32 KiB window of work. The output grows as the inflated
// bytes need it, never on a size the peer declares. Data that is not
// DEFLATE returns [ErrCorrupt] (close code 1007).
//
// # Cost
//
// Measured at commit 40f8d7f on a 2-core AMD EPYC shared with other work
// (load average about 5, so these are upper bounds), with go test -bench .
// ./loop/deflate/, over 16 JSON messages of 1.9 to 2 KiB:
//
//   - heap held by one codec after its first message (runtime.MemStats
//     around creating 100): Compressor 0.82 MB at level 1, 1.08 MB at the
//     default level or with a window under 15 bits, 1.42 MB at level 9;
//     Decompressor 38 KB, 39 KB since 9edcb1a (its input buffer);
//   - compressing one message: about 22 µs at level 1 (678 bytes on
//     average) and 28 to 34 µs at the default level (621 bytes);
//   - inflating one message: about 14 µs; since commit 9edcb1a, about 12 µs
//     (see Inflating below);
//   - allocations per message once the codec and buffers are warm: none,
//     also when a message is refused for its size.
//
// # Inflating
//
// klauspost/compress/flate decodes a Huffman block without an interface call
// per input byte only from a *bytes.Reader, *bytes.Buffer, *bufio.Reader or
// *strings.Reader. Before commit 9edcb1a, Decompress read the payload in
// place through a reader of its own, so every byte cost such a call. It now
// copies the payload and the tail into a buffer that the Decompressor reuses
// and inflates from a *bytes.Reader over it: the copy is of the compressed
// bytes, about a third of the message here. The buffer grows only with the
// payloads given and never past 1 MiB; a larger payload is read in place,
// slower, rather than copied.
//
// Compared in one process, alternating batches of 320 of the same messages
// 300 times (lowest and tenth percentile of the batches), the copy into a
// *bytes.Reader was about 11 % faster than the reader in place, a
// *bufio.Reader of 4 KiB over that reader about 7 %, one of 1 KiB about 5 %.
// Between the test binaries of 75c016e and 9edcb1a, alternated 10 times
// (go test -bench 'Decompress$' ./loop/deflate/, then benchstat), inflating
// one message went from 14.9 to 12.3 µs (-17 %, p < 0.01, with ±20 % of
// noise). What remains is mostly the library's Huffman decoding, a quarter
// of it building the tables of each dynamic block.
package deflate
