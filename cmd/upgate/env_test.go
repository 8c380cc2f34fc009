package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	cases := []struct {
		environ []string
		want    []envWarning
	}{
		{[]string{"PATH=/bin", "UPGATE_LISTEN=:80", "UPGATE_CONFIG=/etc/upgate.yaml"}, nil},
		{[]string{"UPGATE_MAX_CONECTIONS=5"}, []envWarning{{"UPGATE_MAX_CONECTIONS", "UPGATE_MAX_CONNECTIONS"}}},
		{[]string{"UPGATE_LISTN=:80", "UPGATE_LOGLEVEL=debug"}, []envWarning{
			{"UPGATE_LISTN", "UPGATE_LISTEN"}, {"UPGATE_LOGLEVEL", "UPGATE_LOG_LEVEL"}}},
		{[]string{"UPGATE_CONFG=x"}, []envWarning{{"UPGATE_CONFG", "UPGATE_CONFIG"}}},
		{[]string{"UPGATE_max_connections=5"}, []envWarning{{"UPGATE_max_connections", "UPGATE_MAX_CONNECTIONS"}}},
		{[]string{"UPGATE_SOMETHING_ELSE=1"}, []envWarning{{"UPGATE_SOMETHING_ELSE", ""}}},
		// Empty counts as unset; the reserved prefix is never warned about.
		{[]string{"UPGATE_MAX_CONECTIONS="}, nil},
		{[]string{"UPGATE_TEST_ARGS=-v", "UPGATE_TEST_NODE_MODULES=/x", "UPGATE_TEST_ANYTHING=1"}, nil},
		// Other prefixes are not ours.
		{[]string{"UPGATEX=1", "MY_UPGATE_LISTEN=1", "upgate_listen=1"}, nil},
		// A variable repeated in the environment is warned about once.
		{[]string{"UPGATE_LOOP=2", "UPGATE_LOOP=3"}, []envWarning{{"UPGATE_LOOP", "UPGATE_LOOPS"}}},
	}
	for i, c := range cases {
		if got := unknownEnv(c.environ); !reflect.DeepEqual(got, c.want) {
			t.Errorf("#%d: %q: got %+v; want %+v", i, c.environ, got, c.want)
		}
	}
}

// TestUnknownEnvEveryOptionKnown checks that no option's own variable, nor
// a test script's, is warned about.
func TestUnknownEnvEveryOptionKnown(t *testing.T) {
	environ := []string{envConfig + "=x"}
	for i := range options {
		environ = append(environ, options[i].env()+"=x")
	}
	if got := unknownEnv(environ); len(got) != 0 {
		t.Errorf("got %+v; want no warning", got)
	}
}

func TestUnknownEnvWarnsAtStart(t *testing.T) {
	p := startUpgate(t, []string{"UPGATE_MAX_CONECTIONS=5", "UPGATE_TEST_WHATEVER=1", "UPGATE_ZZZZZZZZ=1"})
	lines, _ := p.stderr.snapshot()
	want := map[string]string{
		"UPGATE_MAX_CONECTIONS": "unknown environment variable ignored; did you mean UPGATE_MAX_CONNECTIONS?",
		"UPGATE_ZZZZZZZZ":       "unknown environment variable ignored (see upgate --help)",
	}
	got := map[string]string{}
	for _, l := range lines {
		rec := logRecord(l)
		if rec["level"] == "WARN" && strings.HasPrefix(rec["name"], "UPGATE_") {
			got[rec["name"]] = rec["msg"]
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got warnings %q; want %q\n%s", got, want, p.stderr)
	}
}

func TestBrowserSkip(t *testing.T) {
	cases := []struct {
		skipVar, ci string
		skip        bool
		note        string
	}{
		{"", "", false, ""},
		{"0", "", false, ""},
		{"1", "", true, "UPGATE_TEST_SKIP_BROWSER=1"},
		{"1", "false", true, "UPGATE_TEST_SKIP_BROWSER=1"},
		{"1", "0", true, "UPGATE_TEST_SKIP_BROWSER=1"},
		{"1", "true", false, "UPGATE_TEST_SKIP_BROWSER=1 ignored: CI=true always runs the browser test"},
		{"1", "1", false, "UPGATE_TEST_SKIP_BROWSER=1 ignored: CI=1 always runs the browser test"},
		{"yes", "", false, "UPGATE_TEST_SKIP_BROWSER=yes ignored: set it to 1 to skip the browser test"},
		{"", "true", false, ""},
	}
	for i, c := range cases {
		env := map[string]string{"UPGATE_TEST_SKIP_BROWSER": c.skipVar, "CI": c.ci}
		skip, note := browserSkip(func(k string) string { return env[k] })
		if skip != c.skip || note != c.note {
			t.Errorf("#%d: %q CI=%q: got %v %q; want %v %q", i, c.skipVar, c.ci, skip, note, c.skip, c.note)
		}
	}
}
