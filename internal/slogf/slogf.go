// Package slogf sends the printf-style log lines of the libraries upgate
// embeds (gnet's engine, the NATS server) to a slog.Logger.
package slogf

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger writes printf-style lines to L, each message starting with
// Prefix. Its methods are those of gnet's logger: Fatalf logs at error
// level and does not exit, so that the caller decides what the failure
// means. A line L does not log at its level is not formatted.
type Logger struct {
	L      *slog.Logger
	Prefix string
}

// Logf formats one line and logs it at level.
func (l Logger) Logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if l.L.Enabled(ctx, level) {
		l.L.Log(ctx, level, l.Prefix+fmt.Sprintf(format, args...))
	}
}

// Debugf logs at debug level.
func (l Logger) Debugf(format string, args ...any) { l.Logf(slog.LevelDebug, format, args...) }

// Infof logs at info level.
func (l Logger) Infof(format string, args ...any) { l.Logf(slog.LevelInfo, format, args...) }

// Warnf logs at warning level.
func (l Logger) Warnf(format string, args ...any) { l.Logf(slog.LevelWarn, format, args...) }

// Errorf logs at error level.
func (l Logger) Errorf(format string, args ...any) { l.Logf(slog.LevelError, format, args...) }

// Fatalf logs at error level; it does not exit.
func (l Logger) Fatalf(format string, args ...any) { l.Logf(slog.LevelError, format, args...) }
