package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// report gathers a scenario's figures and failures.
type report struct {
	name    string
	figures []string
	fails   []string
	notes   []string
}

func newReport(name string) *report { return &report{name: name} }

// fig adds a figure line.
func (r *report) fig(format string, args ...any) {
	r.figures = append(r.figures, fmt.Sprintf(format, args...))
}

// fail adds a failure: the scenario fails.
func (r *report) fail(format string, args ...any) {
	r.fails = append(r.fails, fmt.Sprintf(format, args...))
}

// note adds a remark that is not a failure.
func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// check fails with the message unless cond holds.
func (r *report) check(cond bool, format string, args ...any) {
	if !cond {
		r.fail(format, args...)
	}
}

func (r *report) ok() bool { return len(r.fails) == 0 }

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "## %s: %s\n\n", r.name, verdict)
	for _, f := range r.figures {
		b.WriteString("- " + f + "\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	if len(r.fails) > 0 {
		b.WriteString("\nFailures:\n\n")
		for _, f := range r.fails {
			b.WriteString("- " + f + "\n")
		}
	}
	return b.String()
}

// finish prints the report and its verdict line, and writes it to
// out/NAME.md when out is set.
func (r *report) finish(out string) {
	md := r.markdown()
	fmt.Print(md)
	if out != "" {
		if err := os.WriteFile(filepath.Join(out, r.name+".md"), []byte(md), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "upgate-soak: %v\n", err)
		}
	}
	if r.ok() {
		fmt.Printf("PASS %s\n", r.name)
		return
	}
	more := ""
	if len(r.fails) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(r.fails)-1)
	}
	fmt.Printf("FAIL %s: %s%s\n", r.name, r.fails[0], more)
}

// metrics are the samples of the gateway's /metrics, by "name{labels}".
type metrics map[string]float64

// fetchMetrics reads the gateway's /metrics from its admin listener.
func fetchMetrics(admin string) (metrics, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the text exposition format: comments are skipped,
// every other line is "name{labels} value".
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// lines returns the samples whose name is one of names, sorted, as
// "name{labels} value" with the change since base (when base is set);
// zero samples are left out, and a name with no other sample gets one
// line saying so.
func (m metrics) lines(base metrics, names ...string) []string {
	var out []string
	for _, n := range names {
		var ls []string
		seen := false
		for k, v := range m {
			name, _, _ := strings.Cut(k, "{")
			if name != n {
				continue
			}
			seen = true
			if v == 0 {
				continue
			}
			l := fmt.Sprintf("`%s` %s", k, strconv.FormatFloat(v, 'f', -1, 64))
			if base != nil {
				l += fmt.Sprintf(" (%+g during the run)", v-base[k])
			}
			ls = append(ls, l)
		}
		sort.Strings(ls)
		switch {
		case len(ls) > 0:
			out = append(out, ls...)
		case seen:
			out = append(out, fmt.Sprintf("`%s`: every sample 0", n))
		default:
			out = append(out, fmt.Sprintf("`%s`: no sample", n))
		}
	}
	return out
}

// sum adds the samples of name whose labels contain every one of labels
// (each written as key="value").
func (m metrics) sum(name string, labels ...string) float64 {
	t := 0.0
	for k, v := range m {
		if sampleOf(k, name, labels) {
			t += v
		}
	}
	return t
}

// has reports whether any sample of name carries all labels.
func (m metrics) has(name string, labels ...string) bool {
	for k := range m {
		if sampleOf(k, name, labels) {
			return true
		}
	}
	return false
}

// sampleOf reports whether the sample written k ("name{labels}") is one of
// name carrying every one of labels.
func sampleOf(k, name string, labels []string) bool {
	n, rest, _ := strings.Cut(k, "{")
	if n != name {
		return false
	}
	for _, l := range labels {
		if !strings.Contains(rest, l) {
			return false
		}
	}
	return true
}

// addMetrics adds the samples of names to r's figures.
func (r *report) addMetrics(m, base metrics, names ...string) {
	if m == nil {
		r.fig("server metrics: not available")
		return
	}
	for _, l := range m.lines(base, names...) {
		r.fig("%s", l)
	}
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1_000, int64(120*time.Second), 3)
}

// latency renders p50/p99/max of h (nanoseconds).
func latency(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d samples)", dur(h.ValueAtQuantile(50)),
		dur(h.ValueAtQuantile(99)), dur(h.Max()), h.TotalCount())
}

// dur renders nanoseconds with a sensible unit.
func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// mib renders bytes in MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// countLines counts the lines of a file (0 when it cannot be read).
func countLines(path string) int {
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// tailLines returns lines [from, from+n) of a file.
func tailLines(path string, from, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if from >= len(ls) {
		return nil
	}
	ls = ls[from:]
	if len(ls) > n {
		ls = ls[:n]
	}
	return ls
}

// counter counts outcomes by name, keeping the order of first sight.
type counter struct {
	keys []string
	n    map[string]int
}

func (c *counter) add(k string) {
	if c.n == nil {
		c.n = map[string]int{}
	}
	if _, ok := c.n[k]; !ok {
		c.keys = append(c.keys, k)
	}
	c.n[k]++
}

func (c *counter) total() int {
	t := 0
	for _, v := range c.n {
		t += v
	}
	return t
}

func (c *counter) String() string {
	if len(c.keys) == 0 {
		return "none"
	}
	parts := make([]string, len(c.keys))
	for i, k := range c.keys {
		parts[i] = fmt.Sprintf("%s: %d", k, c.n[k])
	}
	return strings.Join(parts, ", ")
}
