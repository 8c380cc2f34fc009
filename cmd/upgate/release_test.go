package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// releaseScript is scripts/release.sh, from this package's directory.
var releaseScript = filepath.Join("..", "..", "scripts", "release.sh")

// TestReleaseScript runs scripts/release.sh and checks what it leaves: two
// static Linux binaries with the version stamped in, built with -trimpath,
// and their SHA256SUMS. The first run cross-builds the module for arm64;
// later runs take that from the build cache.
func TestReleaseScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two release binaries")
	}
	const version = "v0.0.0-release-test"
	out := t.TempDir()
	cmd := exec.Command("bash", releaseScript, out)
	cmd.Env = childEnv("UPGATE_VERSION=" + version)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release.sh %s: %v\n%s", out, err, b)
	}

	arches := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	want := []string{"SHA256SUMS"}
	for arch := range arches {
		want = append(want, "upgate-"+version+"-linux-"+arch)
	}
	slices.Sort(want)
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got files %q; want %q", got, want)
	}

	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	summed := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %d: got %q; want \"HASH  NAME\"", i+1, line)
		}
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("SHA256SUMS line %d: %v", i+1, err)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS line %d: got %s for %s; want %x", i+1, sum, name, h)
		}
		summed[name] = true
	}

	for arch, machine := range arches {
		name := "upgate-" + version + "-linux-" + arch
		path := filepath.Join(out, name)
		if !summed[name] {
			t.Errorf("%s: not in SHA256SUMS", name)
		}
		checkStatic(t, path, machine)
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, s := range []string{"-trimpath=true", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch} {
			k, v, _ := strings.Cut(s, "=")
			if i := slices.IndexFunc(info.Settings, func(b debug.BuildSetting) bool { return b.Key == k }); i < 0 || info.Settings[i].Value != v {
				t.Errorf("%s: build settings lack %s", name, s)
			}
		}
		if runtime.GOOS != "linux" || runtime.GOARCH != arch {
			continue
		}
		b, err := exec.Command(path, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", name, err, b)
		}
		if prefix := "upgate " + version + " "; !bytes.HasPrefix(b, []byte(prefix)) {
			t.Errorf("%s version: got %q; want it to start with %q", name, b, prefix)
		}
	}
}

// checkStatic checks that path is an ELF executable for machine that needs
// no dynamic loader and no shared library.
func checkStatic(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("%s: got %v %v; want %v ET_EXEC", path, f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: has a PT_INTERP program header: not static", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil || len(libs) > 0 {
		t.Errorf("%s: needs shared libraries %q (%v): not static", path, libs, err)
	}
}

// TestReleaseScriptRefusesBadVersion checks that a version unfit for a
// file name is refused before anything is built.
func TestReleaseScriptRefusesBadVersion(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("bash", releaseScript, out)
	cmd.Env = childEnv("UPGATE_VERSION=v1/../x")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), `version "v1/../x"`) {
		t.Errorf("got %v, %q; want a refusal naming the version", err, b)
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("got %d files in OUTDIR; want none", len(entries))
	}
}
