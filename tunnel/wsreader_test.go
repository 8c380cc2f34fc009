package tunnel

import (
	"bytes"
	"fmt"
	"testing"
)

// decodeAll feeds b to a new wsReader in pieces of at most step bytes (all
// at once if step is 0) and returns the stream data and a transcript of the
// other events.
func decodeAll(t testing.TB, b []byte, step int) (data []byte, events string) {
	t.Helper()
	var r wsReader
	b = append([]byte(nil), b...) // next unmasks in place
	var ev bytes.Buffer
	for len(b) > 0 {
		piece := b
		if step > 0 && len(piece) > step {
			piece = piece[:step]
		}
		for len(piece) > 0 {
			e, p, n, code := r.next(piece)
			if n <= 0 || n > len(piece) {
				t.Fatalf("next consumed %d of %d bytes", n, len(piece))
			}
			piece, b = piece[n:], b[n:]
			switch e {
			case wsData:
				if len(p) == 0 {
					t.Fatal("empty data event")
				}
				data = append(data, p...)
			case wsPing, wsPong:
				fmt.Fprintf(&ev, "%d:%q ", e, p)
			case wsClose, wsError:
				fmt.Fprintf(&ev, "%d:%d ", e, code)
			}
		}
	}
	return data, ev.String()
}

func TestWSReader(t *testing.T) {
	for i, c := range []struct {
		in     []byte
		data   string
		events string
	}{
		{clientFrame(0x82, []byte("hello"), false), "hello", ""},
		{concat(clientFrame(0x02, []byte("he"), false), clientFrame(0x89, []byte("p"), false),
			clientFrame(0x00, nil, false), clientFrame(0x80, []byte("llo"), false)), "hello", `2:"p" `},
		{concat(clientFrame(0x8a, []byte("q"), false), clientFrame(0x82, bytes.Repeat([]byte("z"), 70000), false)),
			string(bytes.Repeat([]byte("z"), 70000)), `3:"q" `},
		{concat(clientFrame(0x88, []byte{0x03, 0xe8, 'o', 'k'}, false), clientFrame(0x82, []byte("after"), false)), "", "4:1000 "},
		{clientFrame(0x88, nil, false), "", "4:1005 "},
		{clientFrame(0x81, []byte("t"), false), "", "5:1003 "},
		{concat(clientFrame(0x82, []byte("ok"), false), clientFrame(0x82, []byte("no"), true), clientFrame(0x82, []byte("x"), false)), "ok", "5:1002 "},
		{[]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, "", "5:1002 "},
	} {
		for _, step := range []int{0, 1, 3} {
			data, events := decodeAll(t, c.in, step)
			if string(data) != c.data || events != c.events {
				t.Errorf("#%d step %d: got %.20q %q; want %.20q %q", i, step, data, events, c.data, c.events)
			}
		}
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// FuzzWSReader: whatever the bytes, the reader consumes them all, and how
// they are split does not change what it reports.
func FuzzWSReader(f *testing.F) {
	f.Add(clientFrame(0x82, []byte("hello"), false), uint8(1))
	f.Add(concat(clientFrame(0x02, []byte("he"), false), clientFrame(0x89, []byte("p"), false), clientFrame(0x80, []byte("llo"), false)), uint8(2))
	f.Add(clientFrame(0x88, []byte{0x03, 0xe8}, false), uint8(3))
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		data0, ev0 := decodeAll(t, b, 0)
		data1, ev1 := decodeAll(t, b, int(step))
		if !bytes.Equal(data0, data1) || ev0 != ev1 {
			t.Fatalf("step %d: got %q %q; want %q %q", step, data1, ev1, data0, ev0)
		}
		if len(data0) > len(b) {
			t.Fatalf("got %d data bytes from %d bytes", len(data0), len(b))
		}
	})
}
