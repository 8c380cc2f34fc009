package testutil

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LogRecord is a log record as a test sees it.
type LogRecord struct {
	Level    slog.Level
	Msg      string
	Repeated int64 // the "repeated" attribute of a summary, 0 if absent
	Attrs    map[string]string
}

// LogCapture is a slog.Handler that keeps every record, at every level, for
// a test to inspect. Safe for concurrent use.
type LogCapture struct {
	mu   sync.Mutex
	recs []LogRecord
}

func (c *LogCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *LogCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *LogCapture) WithGroup(string) slog.Handler            { return c }

// Handle keeps r.
func (c *LogCapture) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "repeated" {
			rec.Repeated = a.Value.Int64()
		}
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
	return nil
}

// Matching returns the records whose message contains s.
func (c *LogCapture) Matching(s string) []LogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []LogRecord
	for _, r := range c.recs {
		if strings.Contains(r.Msg, s) {
			out = append(out, r)
		}
	}
	return out
}

// SplitRepeated splits records into those logged as they came and the
// summaries of repeats (a "repeated" attribute).
func SplitRepeated(recs []LogRecord) (firsts, summaries []LogRecord) {
	for _, r := range recs {
		if r.Repeated > 0 {
			summaries = append(summaries, r)
		} else {
			firsts = append(firsts, r)
		}
	}
	return firsts, summaries
}
