package deflate

import "errors"

// Errors returned by the package. They are compared by identity (errors.Is);
// Decompress may wrap ErrCorrupt with the inflater's detail.
var (
	// ErrTooLarge reports that a message inflates to more than the limit
	// given to Decompress. Inflating stops at the limit; the rest is never
	// produced. The loop closes the connection with 1009 (message too big,
	// RFC 6455 §7.4.1).
	ErrTooLarge = errors.New("deflate: inflated message exceeds the limit")

	// ErrCorrupt reports a payload that is not valid DEFLATE data once the
	// 00 00 ff ff tail of RFC 7692 §7.2.2 is appended: a bad block type, a
	// bad Huffman table, a distance before the start of the message, a
	// stored block whose LEN and NLEN disagree, or data that ends inside a
	// block. RFC 7692 gives no status code for it, only that the message
	// cannot be decompressed, so the connection is failed (RFC 6455 §7.1.7)
	// with 1007, invalid frame payload data (§7.4.1: data within a message
	// not consistent with its type), as the ws library for Node.js does; the
	// Autobahn suite's compression cases (12.x, 13.x) send only valid data
	// and do not test this close code.
	ErrCorrupt = errors.New("deflate: corrupt compressed data")

	// ErrWindowBits reports window bits outside 8..15 (RFC 7692 §7.1.2).
	ErrWindowBits = errors.New("deflate: window bits out of range 8..15")

	// ErrLevel reports a compression level outside MinLevel..MaxLevel.
	ErrLevel = errors.New("deflate: compression level out of range -2..9")
)

// errNoSyncTail would report a flush that did not end with 00 00 ff ff; the
// library always writes it, so this is a defect, not a peer's error.
var errNoSyncTail = errors.New("deflate: sync flush without its 00 00 ff ff tail")
