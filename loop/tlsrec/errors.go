package tlsrec

import (
	"errors"
	"strconv"
)

// Errors. Each one the peer caused maps to the alert RFC 8446 §6.2 names
// for it (AlertFor).
var (
	ErrSuite          = errors.New("tlsrec: not a TLS 1.3 cipher suite")
	ErrSecret         = errors.New("tlsrec: traffic secret of the wrong length")
	ErrTooLong        = errors.New("tlsrec: record content over 16384 bytes")
	ErrSequence       = errors.New("tlsrec: sequence number exhausted")
	ErrRecordType     = errors.New("tlsrec: record not of type application_data")
	ErrRecordVersion  = errors.New("tlsrec: record version not 0x0303")
	ErrRecordOverflow = errors.New("tlsrec: record too long")
	ErrBadRecordMAC   = errors.New("tlsrec: record authentication failed")
	ErrNoContentType  = errors.New("tlsrec: record without a content type")
	ErrUnexpected     = errors.New("tlsrec: unexpected message")
	ErrDecode         = errors.New("tlsrec: malformed message")
	ErrParameter      = errors.New("tlsrec: illegal parameter")
)

// Alert is a TLS alert description (RFC 8446 §6).
type Alert uint8

// Alerts this package sends or names.
const (
	AlertCloseNotify       Alert = 0
	AlertUnexpectedMessage Alert = 10
	AlertBadRecordMAC      Alert = 20
	AlertRecordOverflow    Alert = 22
	AlertIllegalParameter  Alert = 47
	AlertDecodeError       Alert = 50
	AlertProtocolVersion   Alert = 70
	AlertInternalError     Alert = 80
	AlertUserCanceled      Alert = 90
)

var alertNames = map[Alert]string{
	AlertCloseNotify:       "close_notify",
	AlertUnexpectedMessage: "unexpected_message",
	AlertBadRecordMAC:      "bad_record_mac",
	AlertRecordOverflow:    "record_overflow",
	AlertIllegalParameter:  "illegal_parameter",
	AlertDecodeError:       "decode_error",
	AlertProtocolVersion:   "protocol_version",
	AlertInternalError:     "internal_error",
	AlertUserCanceled:      "user_canceled",
}

// String returns the alert's name in RFC 8446, or its number.
func (a Alert) String() string {
	if s, ok := alertNames[a]; ok {
		return s
	}
	return "alert(" + strconv.Itoa(int(a)) + ")"
}

// AlertFor returns the alert that answers err.
func AlertFor(err error) Alert {
	switch {
	case errors.Is(err, ErrBadRecordMAC):
		return AlertBadRecordMAC
	case errors.Is(err, ErrRecordOverflow):
		return AlertRecordOverflow
	case errors.Is(err, ErrRecordVersion):
		return AlertProtocolVersion
	case errors.Is(err, ErrRecordType), errors.Is(err, ErrNoContentType), errors.Is(err, ErrUnexpected):
		return AlertUnexpectedMessage
	case errors.Is(err, ErrDecode):
		return AlertDecodeError
	case errors.Is(err, ErrParameter):
		return AlertIllegalParameter
	}
	return AlertInternalError
}

// PeerAlert is a fatal alert the peer sent.
type PeerAlert struct{ Alert Alert }

func (e *PeerAlert) Error() string { return "tlsrec: peer sent alert " + e.Alert.String() }
