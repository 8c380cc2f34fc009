package slogf

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// stringer counts its formattings.
type stringer struct{ n *int }

func (s stringer) String() string { *s.n++; return "x" }

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger{L: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), Prefix: "gateway: engine: "}
	formatted := 0
	l.Debugf("dropped %v", stringer{&formatted})
	l.Infof("info %d", 1)
	l.Warnf("warn %s", "two")
	l.Errorf("error %v", 3)
	l.Fatalf("fatal %v", 4)
	for i, want := range []string{
		`level=INFO msg="gateway: engine: info 1"`,
		`level=WARN msg="gateway: engine: warn two"`,
		`level=ERROR msg="gateway: engine: error 3"`,
		`level=ERROR msg="gateway: engine: fatal 4"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("#%d: got %q; want a line with %s", i, buf.String(), want)
		}
	}
	if strings.Contains(buf.String(), "dropped") || formatted != 0 {
		t.Errorf("got %q, %d formattings; want the debug line neither logged nor formatted", buf.String(), formatted)
	}
}
