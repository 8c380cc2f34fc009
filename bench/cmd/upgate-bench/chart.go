package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// barChart draws one bar per group.
func barChart(gs []*group, f func(*Result) float64, title, ylabel, file string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	vals := make(plotter.Values, len(gs))
	names := make([]string, len(gs))
	for i, g := range gs {
		vals[i] = g.med(f)
		names[i] = g.server
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 0x33, G: 0x66, B: 0xaa, A: 0xff}
	bars.LineStyle.Width = 0
	top := 0.0
	var xys plotter.XYs
	var lbls []string
	for i, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		top = max(top, v)
		xys = append(xys, plotter.XY{X: float64(i), Y: v})
		lbls = append(lbls, num(v, 0))
		if v < 100 {
			lbls[len(lbls)-1] = num(v, 1)
		}
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: lbls})
	if err != nil {
		return err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].XAlign = -0.5
		labels.TextStyle[i].YAlign = 0.2
	}
	p.Add(plotter.NewGrid(), bars, labels)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(gs))-0.4
	p.Y.Min, p.Y.Max = 0, top*1.12
	return p.Save(7*vg.Inch, 4*vg.Inch, file)
}

// nines maps a percentile to the "number of nines" axis of latency
// percentile plots: 90 → 1, 99 → 2, 99.9 → 3.
func nines(pct float64) float64 { return -math.Log10(1 - pct/100) }

// ninesTicks labels the percentile axis.
type ninesTicks struct{}

func (ninesTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for i, lbl := range []string{"0%", "90%", "99%", "99.9%", "99.99%"} {
		if v := float64(i); v >= min-1e-9 && v <= max+1e-9 {
			ts = append(ts, plot.Tick{Value: v, Label: lbl})
		}
	}
	return ts
}

// cdfChart draws each group's latency by percentile, from the run with the
// median key.
func cdfChart(gs []*group, key func(*Result) float64, cdf func(*Result) *Latency, title, file string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = ninesTicks{}
	p.X.Min, p.X.Max = 0, 4.2
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, g := range gs {
		l := cdf(g.medianRun(key))
		if l == nil || len(l.CDF) == 0 {
			continue
		}
		var xys plotter.XYs
		for _, pt := range l.CDF {
			if pt[0] >= 99.995 || pt[1] <= 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: nines(pt[0]), Y: pt[1]})
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		if g.server == "upgate" {
			line.Width = vg.Points(3)
		}
		line.Dashes = plotutil.Dashes(i / 7)
		p.Add(line)
		p.Legend.Add(g.server, line)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// chartLabel prefixes the titles of TLS charts with what the client
// offered: "wss://, X25519: ".
func chartLabel(gs []*group) string {
	if i := gs[0].runs[0].TLS; i != nil {
		if i.KeyShares == "x25519" {
			return "wss://, X25519: "
		}
		return "wss://, default key shares: "
	}
	return ""
}

// chartHandshakes draws NAME.png, NAME-cpu.png and NAME-latency.png.
func chartHandshakes(gs []*group, dir, name string) error {
	l := chartLabel(gs)
	if err := barChart(gs, hsRate, l+"WebSocket handshakes per second (median)", "handshakes/s",
		filepath.Join(dir, name+".png")); err != nil {
		return fmt.Errorf("handshake chart: %w", err)
	}
	if err := cpuChart(gs, l+"Server CPU time per handshake (median, lower is better)",
		filepath.Join(dir, name+"-cpu.png")); err != nil {
		return fmt.Errorf("handshake CPU chart: %w", err)
	}
	title := "Handshake latency by percentile (connect → verified 101)"
	if l != "" {
		title = l + "handshake latency by percentile (connect → TLS → verified 101)"
	}
	return cdfChart(gs, hsRate, func(r *Result) *Latency { return r.HandshakeLatency },
		title, filepath.Join(dir, name+"-latency.png"))
}

// chartEcho draws NAME.png and NAME-latency.png.
func chartEcho(gs []*group, dir, name string) error {
	l := chartLabel(gs)
	if err := barChart(gs, msgRate, l+"Echo messages per second (median)", "messages/s",
		filepath.Join(dir, name+".png")); err != nil {
		return fmt.Errorf("echo chart: %w", err)
	}
	return cdfChart(gs, msgRate, func(r *Result) *Latency { return r.RTT },
		l+"Echo round-trip time by percentile", filepath.Join(dir, name+"-latency.png"))
}

func chartLatency(gs []*group, dir, _ string) error {
	// every run reaches the target rate: the median run is the one with the
	// median p99
	return cdfChart(gs, p99, func(r *Result) *Latency { return r.HandshakeLatency },
		fmt.Sprintf("Handshake latency by percentile at %.0f handshakes/s", gs[0].runs[0].Settings.Rate),
		filepath.Join(dir, "latency.png"))
}

// cpuChart stacks each server's kernel time per operation on its user time.
func cpuChart(gs []*group, title, file string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "µs of CPU per handshake"
	user := make(plotter.Values, len(gs))
	kern := make(plotter.Values, len(gs))
	names := make([]string, len(gs))
	top := 0.0
	for i, g := range gs {
		user[i] = g.med(usrPerOp)
		kern[i] = max(g.med(srvPerOp)-user[i], 0)
		names[i] = g.server
		top = max(top, user[i]+kern[i])
	}
	ub, err := plotter.NewBarChart(user, vg.Points(28))
	if err != nil {
		return err
	}
	ub.Color = color.RGBA{R: 0xdd, G: 0x88, B: 0x22, A: 0xff}
	ub.LineStyle.Width = 0
	kb, err := plotter.NewBarChart(kern, vg.Points(28))
	if err != nil {
		return err
	}
	kb.Color = color.RGBA{R: 0x33, G: 0x66, B: 0xaa, A: 0xff}
	kb.LineStyle.Width = 0
	kb.StackOn(ub)
	p.Add(plotter.NewGrid(), ub, kb)
	p.Legend.Add("user space", ub)
	p.Legend.Add("kernel", kb)
	p.Legend.Top = true
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(gs))-0.4
	p.Y.Min, p.Y.Max = 0, top*1.15
	return p.Save(7*vg.Inch, 4*vg.Inch, file)
}

// barOf returns a section chart drawing NAME.png: the median of f per
// server as bars, titled title over a y axis labelled ylabel.
func barOf(f func(*Result) float64, title, ylabel string) func([]*group, string, string) error {
	return func(gs []*group, dir, name string) error {
		if err := barChart(gs, f, chartLabel(gs)+title, ylabel, filepath.Join(dir, name+".png")); err != nil {
			return fmt.Errorf("%s chart: %w", name, err)
		}
		return nil
	}
}

// Charts of the permessage-deflate sections: what their targets compare.
var (
	chartDeflateEcho  = barOf(srvPerOp, "Server CPU per 2 KiB JSON message echoed (median)", "µs of CPU per message")
	chartDeflateHold  = barOf(func(r *Result) float64 { return r.ServerBytesPerConn }, "Server memory per connection after one JSON echo (median)", "bytes per connection")
	chartDeflateBcast = barOf(srvPerOp, "Server CPU per delivery of a 2 KiB JSON publish (median)", "µs of CPU per delivery")
)
