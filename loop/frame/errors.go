package frame

import (
	"errors"

	"github.com/gobwas/ws"
)

// ErrNeedMore reports that the bytes given do not yet hold a complete frame.
// It is not a protocol error: the caller waits for more bytes and calls again.
var ErrNeedMore = errors.New("frame: need more data")

// ProtocolError is a violation of RFC 6455 by the peer. Code is the status
// the server sends in its close frame (§7.4.1) before failing the connection
// (§7.1.7); Reason is a short text suitable as the close reason.
type ProtocolError struct {
	Code   ws.StatusCode
	Reason string
}

// Error returns the reason prefixed with the package name.
func (e *ProtocolError) Error() string { return "frame: " + e.Reason }

// CodeOf returns the close code carried by err: the Code of the first
// *ProtocolError in err's tree, or 0 when there is none (nil, ErrNeedMore or
// an error that is not a protocol violation).
func CodeOf(err error) ws.StatusCode {
	if pe, ok := errors.AsType[*ProtocolError](err); ok {
		return pe.Code
	}
	return 0
}

// Protocol errors returned by Decoder.Next and ParseClose. They are compared
// by identity (errors.Is) and must not be modified.
var (
	// ErrReservedBits: an RSV bit is set that no negotiated extension
	// defines (§5.2).
	ErrReservedBits = &ProtocolError{ws.StatusProtocolError, "reserved bits set without a negotiated extension"}
	// ErrReservedOpcode: opcode 0x3-0x7 or 0xB-0xF (§5.2).
	ErrReservedOpcode = &ProtocolError{ws.StatusProtocolError, "reserved opcode"}
	// ErrUnmaskedFrame: a client frame without a masking key (§5.1).
	ErrUnmaskedFrame = &ProtocolError{ws.StatusProtocolError, "unmasked client frame"}
	// ErrLengthOverflow: a 64-bit payload length with its most significant
	// bit set (§5.2).
	ErrLengthOverflow = &ProtocolError{ws.StatusProtocolError, "64-bit payload length with the most significant bit set"}
	// ErrControlTooLong: a control frame payload over 125 bytes (§5.5).
	ErrControlTooLong = &ProtocolError{ws.StatusProtocolError, "control frame payload longer than 125 bytes"}
	// ErrFragmentedControl: a control frame with FIN clear (§5.5).
	ErrFragmentedControl = &ProtocolError{ws.StatusProtocolError, "fragmented control frame"}
	// ErrUnexpectedContinuation: a continuation frame while no fragmented
	// message is open (§5.4).
	ErrUnexpectedContinuation = &ProtocolError{ws.StatusProtocolError, "continuation frame without a message to continue"}
	// ErrExpectedContinuation: a text or binary frame while a fragmented
	// message is open (§5.4).
	ErrExpectedContinuation = &ProtocolError{ws.StatusProtocolError, "new data frame while a fragmented message is open"}
	// ErrCloseLength: a close frame with a 1-byte payload (§5.5.1).
	ErrCloseLength = &ProtocolError{ws.StatusProtocolError, "close frame payload of 1 byte"}
	// ErrCloseCode: a close code that must not appear on the wire (§7.4).
	ErrCloseCode = &ProtocolError{ws.StatusProtocolError, "invalid close code"}
	// ErrInvalidUTF8: a text message that is not valid UTF-8 (§5.6, §8.1).
	ErrInvalidUTF8 = &ProtocolError{ws.StatusInvalidFramePayloadData, "invalid UTF-8 in text message"}
	// ErrCloseReasonUTF8: a close reason that is not valid UTF-8 (§5.5.1).
	ErrCloseReasonUTF8 = &ProtocolError{ws.StatusInvalidFramePayloadData, "invalid UTF-8 in close reason"}
	// ErrMessageTooBig: a message longer than Limits.MaxMessage (§10.4).
	ErrMessageTooBig = &ProtocolError{ws.StatusMessageTooBig, "message too big"}
)
