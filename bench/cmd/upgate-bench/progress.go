package main

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress shows one bar per phase on a terminal and nothing elsewhere.
type progress struct {
	p    *mpb.Progress
	bar  *mpb.Bar
	info atomic.Pointer[string]
}

func newProgress(enabled bool) *progress {
	if !enabled || !term.IsTerminal(int(os.Stdout.Fd())) {
		return &progress{}
	}
	return &progress{p: mpb.New(mpb.WithWidth(32), mpb.WithOutput(os.Stdout))}
}

// phase starts a bar of total steps named name.
func (pr *progress) phase(name string, total int64) {
	if pr.p == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.Abort(false)
	}
	empty := ""
	pr.info.Store(&empty)
	pr.bar = pr.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-24s", name))),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string { return " " + *pr.info.Load() })),
	)
}

// set moves the bar to cur and shows info beside it.
func (pr *progress) set(cur int64, info string) {
	if pr.bar == nil {
		return
	}
	pr.info.Store(&info)
	pr.bar.SetCurrent(cur)
}

// done completes the current bar and waits for the display to settle.
func (pr *progress) done() {
	if pr.p == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.SetTotal(-1, true)
		pr.bar = nil
	}
	pr.p.Wait()
	pr.p = mpb.New(mpb.WithWidth(32), mpb.WithOutput(os.Stdout))
}
