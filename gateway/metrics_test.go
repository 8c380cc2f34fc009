package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseText parses a text exposition into its families.
func parseText(t testing.TB, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, text)
	}
	return fams
}

// samples flattens families into samples, named as scraped (with _bucket,
// _sum and _count for histograms).
func samples(t testing.TB, fams map[string]*dto.MetricFamily) model.Vector {
	t.Helper()
	v, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, slices.Collect(maps.Values(fams))...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// scrapeFamilies scrapes g's /metrics.
func scrapeFamilies(t testing.TB, g *Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	status, _, b := do(t, "GET", adminURL(g, "/metrics"), nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d %s", status, b)
	}
	return parseText(t, b)
}

// metric returns the value of series (a name and its labels in any order:
// `upgate_closes_total{route="/echo",code="1000"}`) scraped from g, or -1
// when absent.
func metric(t testing.TB, g *Gateway, series string) float64 {
	t.Helper()
	want := samples(t, parseText(t, []byte(series+" 0\n")))
	if len(want) != 1 {
		t.Fatalf("bad series %q", series)
	}
	for _, s := range samples(t, scrapeFamilies(t, g)) {
		if s.Metric.Equal(want[0].Metric) {
			return float64(s.Value)
		}
	}
	return -1
}

// exercise makes g count something in the families that show only the
// samples that are not zero: a handshake and a close on /echo, a plain
// request and a malformed one.
func exercise(t testing.TB, g *Gateway) {
	t.Helper()
	c := dial(t, g, "/echo", nil)
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	expectClose(t, c, 1000)
	if status, _, _ := do(t, "GET", publicURL(g, "/healthz"), nil); status != 200 {
		t.Fatalf("GET /healthz: %d", status)
	}
	sendMalformed(t, g)
	eventually(t, "the close to be counted", func() bool {
		return metric(t, g, `upgate_closes_total{route="/echo",code="1000"}`) >= 1
	})
}

// sendMalformed sends g a request head with bare LF line ends and expects
// the loop's 400 for it.
func sendMalformed(t testing.TB, g *Gateway) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte("GET /echo HTTP/1.1\nHost: x\n\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 400 ") {
		t.Fatalf("bare LF head: %q, %v", line, err)
	}
}

// exposedFamilies starts a gateway with a bus, exercises it and returns the
// families its /metrics shows.
func exposedFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	g := embeddedNode(t, "a")
	exercise(t, g)
	return scrapeFamilies(t, g)
}

func TestMetricsFamilies(t *testing.T) {
	fams := exposedFamilies(t)
	for i, d := range metricDefs {
		if d.tls || d.tunnel {
			continue // TestTLSMetricsFamilies, TestTunnelMetrics
		}
		f := fams[d.name]
		if f == nil {
			t.Errorf("#%d: %s not exposed", i, d.name)
			continue
		}
		want := map[metricType]dto.MetricType{counter: dto.MetricType_COUNTER, gauge: dto.MetricType_GAUGE, histogramType: dto.MetricType_HISTOGRAM}[d.typ]
		if f.GetType() != want || f.GetHelp() != d.help {
			t.Errorf("#%d: %s: got type %v help %q; want %v %q", i, d.name, f.GetType(), f.GetHelp(), want, d.help)
		}
	}
	for _, name := range []string{
		"process_open_fds", "process_max_fds", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "go_goroutines", "go_gc_duration_seconds",
		"go_memstats_heap_alloc_bytes",
	} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func TestMetricsConsistent(t *testing.T) {
	for _, withBus := range []bool{false, true} {
		var g *Gateway
		if withBus {
			g = embeddedNode(t, "a")
		} else {
			g = startGateway(t, testConfig())
		}
		exercise(t, g)
		// The pedantic registry checks that what is collected is described.
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(newCollector(g))
		if _, err := reg.Gather(); err != nil {
			t.Errorf("bus %v: gathering: %v", withBus, err)
		}
		var buf bytes.Buffer
		if err := g.WriteMetrics(&buf); err != nil {
			t.Fatalf("bus %v: WriteMetrics: %v", withBus, err)
		}
		fams := parseText(t, buf.Bytes())
		for _, name := range []string{"upgate_handshakes_total", "go_goroutines", "process_open_fds"} {
			if fams[name] == nil {
				t.Errorf("bus %v: WriteMetrics wrote no %s", withBus, name)
			}
		}
		if got := fams["upgate_bus_connected"] != nil; got != withBus {
			t.Errorf("bus %v: got upgate_bus_connected %v; want %v", withBus, got, withBus)
		}
	}
}

// TestMetricsNegotiated checks that /metrics answers the protobuf format
// and compresses when asked.
func TestMetricsNegotiated(t *testing.T) {
	g := startGateway(t, testConfig())
	req, err := http.NewRequest("GET", adminURL(g, "/metrics"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	req.Header.Set("Accept-Encoding", "gzip")
	// Without transparent decompression, to see the encoding.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: testTimeout}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Errorf("Content-Type %q; want protobuf", ct)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("Content-Encoding %q; want gzip", ce)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	dec := expfmt.NewDecoder(zr, expfmt.ResponseFormat(resp.Header))
	found := false
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		found = found || mf.GetName() == "upgate_handshakes_total"
	}
	if !found {
		t.Error("no upgate_handshakes_total in the protobuf answer")
	}
}

// readmeFile documents the metrics, from the package directory.
const readmeFile = "../README.md"

// documentedMetrics returns the metric names of the tables in the README's
// "### Metrics" section, and the prefixes of the rows that list a family by
// prefix (`go_*`).
func documentedMetrics(t *testing.T) (names, prefixes []string) {
	t.Helper()
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Metrics\n")
	if !ok {
		t.Fatalf("%s has no ### Metrics section", readmeFile)
	}
	if i := regexp.MustCompile(`(?m)^##`).FindStringIndex(section); i != nil {
		section = section[:i[0]]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+\\*?)` \\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if p, ok := strings.CutSuffix(m[1], "*"); ok {
			prefixes = append(prefixes, p)
		} else {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatalf("no metric rows in the ### Metrics section of %s", readmeFile)
	}
	return names, prefixes
}

// TestMetricsDocumented checks that the README's table lists every family a
// gateway with a bus exposes (upgate_* by name; go_* and process_* may be
// listed by prefix), and nothing that is not one.
func TestMetricsDocumented(t *testing.T) {
	names, prefixes := documentedMetrics(t)
	fams := exposedFamilies(t)
	maps.Copy(fams, tlsFamilies(t))
	for name := range fams {
		if slices.Contains(names, name) {
			continue
		}
		if !strings.HasPrefix(name, "upgate_") && slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		t.Errorf("%s is exposed but not in the metrics table of %s", name, readmeFile)
	}
	for _, name := range names {
		described := slices.ContainsFunc(metricDefs, func(d metricDef) bool { return d.name == name })
		if !described && fams[name] == nil {
			t.Errorf("%s lists %s, which is not exposed", readmeFile, name)
		}
	}
}
