package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// rssSample is one reading of the server's memory.
type rssSample struct {
	t     int64 // engine time, ns
	rss   int64 // bytes
	open  int   // client connections open
	cpu   float64
	phase string
}

// sampler reads the server's VmRSS (and CPU use) at a fixed interval.
type sampler struct {
	pid     int
	every   int64
	next    int64
	lastCPU time.Duration
	lastT   int64
	samples []rssSample
}

func newSampler(pid int, every time.Duration) *sampler {
	cpu, _ := loadgen.ProcCPU(pid)
	return &sampler{pid: pid, every: int64(every), lastCPU: cpu}
}

// sample takes a reading when one is due at engine time now.
func (s *sampler) sample(now int64, open int, phase string) {
	if now < s.next {
		return
	}
	s.next = now + s.every
	rss := loadgen.ProcRSS(s.pid)
	cpu, _ := loadgen.ProcCPU(s.pid)
	util := 0.0
	if now > s.lastT && s.lastT > 0 {
		util = (cpu - s.lastCPU).Seconds() / secs(now-s.lastT)
	}
	s.lastCPU, s.lastT = cpu, now
	s.samples = append(s.samples, rssSample{t: now, rss: rss, open: open, cpu: util, phase: phase})
}

func (s *sampler) last() int64 {
	if len(s.samples) == 0 {
		return 0
	}
	return s.samples[len(s.samples)-1].rss
}

// steady returns the mean, min and max of the samples in [from, to].
func (s *sampler) steady(from, to int64) (mean, lo, hi float64, n int) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range s.samples {
		if x.t < from || x.t > to || x.rss == 0 {
			continue
		}
		v := float64(x.rss)
		mean += v
		lo, hi = min(lo, v), max(hi, v)
		n++
	}
	if n > 0 {
		mean /= float64(n)
	}
	return mean, lo, hi, n
}

// report checks that RSS stayed within band of its mean after warm-up.
func (s *sampler) report(r *report, warmEnd, end int64, band float64) {
	mean, lo, hi, n := s.steady(warmEnd, end)
	if n < 2 {
		r.fig("server RSS: %d samples after warm-up: too few to judge its stability", n)
		r.note("the hold is too short after warm-up for the memory check")
		return
	}
	dev := max(hi-mean, mean-lo) / mean
	r.fig("server RSS after warm-up (%d samples): mean %s, min %s, max %s, largest deviation %.1f%% (limit %.0f%%)",
		n, mib(mean), mib(lo), mib(hi), dev*100, band*100)
	r.check(dev <= band, "server RSS left the ±%.0f%% band around its mean %s: min %s, max %s",
		band*100, mib(mean), mib(lo), mib(hi))
}

func (s *sampler) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"seconds", "rss_bytes", "rss_mib", "connections", "server_cpu", "phase"})
	for _, x := range s.samples {
		_ = w.Write([]string{
			strconv.FormatFloat(secs(x.t), 'f', 1, 64),
			strconv.FormatInt(x.rss, 10),
			strconv.FormatFloat(float64(x.rss)/(1<<20), 'f', 2, 64),
			strconv.Itoa(x.open),
			strconv.FormatFloat(x.cpu, 'f', 3, 64),
			x.phase,
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plot draws RSS over time, the band around its post-warm-up mean, and
// marks for the end of connecting, the end of warm-up, and contention.
func (s *sampler) plot(path string, established, warmEnd, end, busyFrom, busyTo int64, band float64) error {
	p := plot.New()
	p.Title.Text = "upgate server RSS during the hold"
	p.X.Label.Text = "seconds since the client started"
	p.Y.Label.Text = "VmRSS (MiB)"
	var xys plotter.XYs
	top := 0.0
	for _, x := range s.samples {
		v := float64(x.rss) / (1 << 20)
		xys = append(xys, plotter.XY{X: secs(x.t), Y: v})
		top = max(top, v)
	}
	if len(xys) == 0 {
		return fmt.Errorf("no samples")
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 0x33, G: 0x66, B: 0xaa, A: 0xff}
	line.Width = vg.Points(2)
	p.Add(plotter.NewGrid(), line)
	p.Legend.Add("RSS", line)
	top *= 1.15
	p.Y.Min, p.Y.Max = 0, top
	hline := func(y float64, c color.Color, dashed bool) (*plotter.Line, error) {
		l, err := plotter.NewLine(plotter.XYs{{X: secs(warmEnd), Y: y}, {X: secs(end), Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color = c
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		return l, nil
	}
	if mean, _, _, n := s.steady(warmEnd, end); n > 0 {
		m := mean / (1 << 20)
		grey := color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
		ml, err := hline(m, grey, false)
		if err != nil {
			return err
		}
		p.Legend.Add("mean after warm-up", ml)
		bl, err := hline(m*(1+band), grey, true)
		if err != nil {
			return err
		}
		if _, err := hline(m*(1-band), grey, true); err != nil {
			return err
		}
		p.Legend.Add(fmt.Sprintf("±%.0f%%", band*100), bl)
	}
	vline := func(t int64, c color.Color, name string) error {
		if t <= 0 {
			return nil
		}
		l, err := plotter.NewLine(plotter.XYs{{X: secs(t), Y: 0}, {X: secs(t), Y: top}})
		if err != nil {
			return err
		}
		l.Color = c
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		if name != "" {
			p.Legend.Add(name, l)
		}
		return nil
	}
	if err := vline(established, color.RGBA{G: 0x99, A: 0xff}, "all connected"); err != nil {
		return err
	}
	if err := vline(warmEnd, color.RGBA{R: 0xdd, G: 0x88, A: 0xff}, "end of warm-up"); err != nil {
		return err
	}
	if busyFrom > 0 {
		red := color.RGBA{R: 0xcc, A: 0xff}
		if err := vline(busyFrom, red, "contention"); err != nil {
			return err
		}
		if err := vline(busyTo, red, ""); err != nil {
			return err
		}
	}
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}
