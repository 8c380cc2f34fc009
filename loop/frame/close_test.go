package frame

import (
	"testing"

	"github.com/gobwas/ws"
)

func TestValidCloseCode(t *testing.T) {
	for i, tc := range []struct {
		code ws.StatusCode
		want bool
	}{
		{0, false},
		{999, false},
		{1000, true},
		{1001, true},
		{1002, true},
		{1003, true},
		{1004, false},
		{1005, false},
		{1006, false},
		{1007, true},
		{1008, true},
		{1009, true},
		{1010, true},
		{1011, true},
		{1012, true},
		{1013, true},
		{1014, true},
		{1015, false},
		{1016, false},
		{1100, false},
		{2000, false},
		{2999, false},
		{3000, true},
		{3999, true},
		{4000, true},
		{4999, true},
		{5000, false},
		{65535, false},
	} {
		if got := ValidCloseCode(tc.code); got != tc.want {
			t.Errorf("#%d: got ValidCloseCode(%d) = %v; want %v", i, tc.code, got, tc.want)
		}
	}
	// Every code, against the ranges of §7.4.
	n := 0
	for c := range 1 << 16 {
		if ValidCloseCode(ws.StatusCode(c)) {
			n++
		}
	}
	if want := 4 + 8 + 2000; n != want {
		t.Errorf("got %d valid codes; want %d", n, want)
	}
}

func TestParseClose(t *testing.T) {
	for i, tc := range []struct {
		payload string
		code    ws.StatusCode
		reason  string
		err     error
	}{
		{"", 1005, "", nil},
		{"\x03", 0, "", ErrCloseLength},
		{"\x03\xe8", 1000, "", nil},
		{"\x03\xe9going", 1001, "going", nil},
		{"\x0f\xa0€", 4000, "€", nil},
		{"\x03\xed", 1005, "", ErrCloseCode},
		{"\x03\xee", 1006, "", ErrCloseCode},
		{"\x03\xec", 1004, "", ErrCloseCode},
		{"\x03\xf7", 1015, "", ErrCloseCode},
		{"\x13\x88", 5000, "", ErrCloseCode},
		{"\x00\x00", 0, "", ErrCloseCode},
		{"\x03\xe8\xc3", 1000, "", ErrCloseReasonUTF8},
		{"\x03\xe8ok\xed\xbf\xbf", 1000, "", ErrCloseReasonUTF8},
	} {
		code, reason, err := ParseClose([]byte(tc.payload))
		if err != tc.err {
			t.Errorf("#%d: got error %v; want %v", i, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if code != tc.code || string(reason) != tc.reason {
			t.Errorf("#%d: got %d %q; want %d %q", i, code, reason, tc.code, tc.reason)
		}
	}
}
