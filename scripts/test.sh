#!/usr/bin/env bash
# The one test command for upgate. Runs, in order, failing fast:
#   1. gofmt      every Go file (tracked and untracked) must be gofmt-clean
#   2. vet        go vet ./..., in the module and in bench/
#   3. cross      go build and go vet ./... for linux/386 (32-bit),
#                 linux/arm64 and linux/riscv64; go vet of the loop for
#                 darwin/arm64 and freebsd/amd64; parser and loop/frame for
#                 windows/amd64 and js/wasm; their tests run as 386 binaries
#                 on a linux/amd64 host
#   4. deps       node test clients' dependencies (npm ci from the lock file),
#                 Debian's chromium for the browser test and Debian's
#                 prometheus package (for promtool, which checks the alert
#                 rules) when they are absent: as root, this runs apt-get
#                 update && apt-get install (UPGATE_TEST_SKIP_BROWSER=1 skips
#                 the chromium install and the browser test outside CI)
#   5. test       go test -race ./..., in the module and in bench/
#      test-norace go test ./... (allocation tests, full-size load tests)
#   6. fuzz       a short run of every FuzzXxx target in the module
#   7. soak       scripts/soak.sh --quick: load and fault scenarios against
#                 the real binary (results in a temporary directory)
#   8. bench      scripts/bench.sh --quick, when that script exists
#
# Environment (the prefix UPGATE_TEST_ is reserved for the scripts: the
# binary neither reads nor warns about it):
#   UPGATE_TEST_ARGS      extra arguments for step 5 (e.g. "-run TestFrame -v")
#   UPGATE_TEST_FUZZTIME  -fuzztime for each fuzz target (default 20s; 0 or
#                         "off" skips the fuzz step)
#   UPGATE_TEST_SKIP_BROWSER  1 skips the browser test (cmd/upgate's
#                         TestBrowserChromium) and the chromium install, on a
#                         developer's machine; under CI (CI set, but not to
#                         false or 0) it is ignored with a message: CI always
#                         runs the browser test
# Exported to the tests:
#   UPGATE_TEST_NODE_MODULES  scripts/node/node_modules (absolute), when ws
#                             is installed
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
	export PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: go not found on PATH (nor in /usr/local/go/bin)" >&2
	exit 1
fi

# ----------------------------------------------------------------- helpers --

# now_us prints a timestamp in microseconds (second resolution without bash 5).
now_us() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((10#$t))
	else
		echo $((SECONDS * 1000000))
	fi
}

# fmt_secs US prints a microsecond duration as seconds with one decimal.
fmt_secs() {
	local ds=$((($1 + 50000) / 100000))
	printf '%d.%ds' $((ds / 10)) $((ds % 10))
}

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/upgate-test.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

SCRIPT_START=$(now_us)
STEP_NAME=""
STEP_START=0

step_begin() {
	STEP_NAME=$1
	STEP_START=$(now_us)
	echo
	echo "==> [$STEP_NAME] $2"
}

step_end() {
	echo "<== [$STEP_NAME] ok in $(fmt_secs $(($(now_us) - STEP_START)))"
}

# step_fail MESSAGE: report the failing step with its timing and exit 1.
step_fail() {
	echo >&2
	echo "test.sh: FAILED at step [$STEP_NAME] after $(fmt_secs $(($(now_us) - STEP_START))): $1" >&2
	exit 1
}

echo "test.sh: $(go version)"
if command -v node >/dev/null 2>&1; then echo "test.sh: node $(node --version)"; fi
if command -v npm >/dev/null 2>&1; then echo "test.sh: npm $(npm --version 2>/dev/null || echo '?')"; fi

# ------------------------------------------------------------------ gofmt --

# go_files prints the module's Go files, NUL-separated: tracked and untracked
# (but not ignored) files from git, or a directory walk outside a git work
# tree. node_modules directories are skipped either way.
go_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard -- '*.go' |
			while IFS= read -r -d '' f; do
				case "/$f" in */node_modules/*) continue ;; esac
				[ -f "$f" ] && printf '%s\0' "$f"
			done
	else
		find . \( -name node_modules -o -name .git \) -prune -o -type f -name '*.go' -print0
	fi
}

step_begin gofmt "gofmt -l (tracked and untracked Go files)"
go_files | sort -zu >"$TMP_DIR/gofiles"
n_go=$(tr -cd '\0' <"$TMP_DIR/gofiles" | wc -c)
if [ "$n_go" -gt 0 ]; then
	if ! xargs -0 gofmt -l <"$TMP_DIR/gofiles" >"$TMP_DIR/gofmt.out" 2>"$TMP_DIR/gofmt.err"; then
		cat "$TMP_DIR/gofmt.out" "$TMP_DIR/gofmt.err" >&2
		step_fail "gofmt could not process some files (syntax errors above)"
	fi
	if [ -s "$TMP_DIR/gofmt.out" ]; then
		echo "These files are not gofmt-clean (fix with: gofmt -w FILE):" >&2
		sed 's/^/  /' "$TMP_DIR/gofmt.out" >&2
		step_fail "$(wc -l <"$TMP_DIR/gofmt.out" | tr -d ' ') file(s) need gofmt"
	fi
fi
echo "$n_go Go file(s) checked"
step_end

# -------------------------------------------------------------------- vet --

step_begin vet "go vet ./... (the module, then bench/'s)"
go vet ./... || step_fail "go vet reported problems (see above)"
(cd bench && go vet ./...) || step_fail "go vet reported problems in bench/ (see above)"
step_end

# ------------------------------------------------------------------ cross --

# The module must build on 32-bit systems, where an int is 32 bits, and on
# the CPUs Linux servers run: go build compiles and links it, go vet
# type-checks the tests too (far cheaper than go test -c, which links a test
# binary per package). Where else the loop runs (gnet's pollers: macOS, the
# BSDs), only what differs there is checked: the loop with its fallbacks,
# type-checked by go vet, without the whole module (nats-server alone takes
# a minute or two per target on a cold cache). The pure packages build
# everywhere, and their tests run as 386 binaries, which an amd64 Linux
# kernel executes. The first run compiles the standard library and the
# dependencies for each target (some 6 minutes on 2 cores); with a warm
# build cache the step takes about 15 s, 45 s after a change to the loop's
# API.
CROSS_TARGETS=(linux/386 linux/arm64 linux/riscv64)
LOOP_TARGETS=(darwin/arm64 freebsd/amd64)
LOOP_PKGS=(./loop ./parser ./loop/frame)
PURE_TARGETS=(windows/amd64 js/wasm)
PURE_PKGS=(./parser ./loop/frame)
step_begin cross "go build and go vet ./... for ${CROSS_TARGETS[*]}; ${LOOP_PKGS[*]} for ${LOOP_TARGETS[*]}; ${PURE_PKGS[*]} for ${PURE_TARGETS[*]}"
for target in "${CROSS_TARGETS[@]}"; do
	t0=$(now_us)
	GOOS=${target%/*} GOARCH=${target#*/} go build ./... ||
		step_fail "go build ./... for $target failed (see above)"
	GOOS=${target%/*} GOARCH=${target#*/} go vet ./... ||
		step_fail "go vet ./... for $target failed (see above)"
	echo "$target: built and vetted in $(fmt_secs $(($(now_us) - t0)))"
done
# vet_for TARGET PKG... type-checks the packages, tests included, for a
# GOOS/GOARCH pair.
vet_for() {
	local target=$1 t0
	shift
	t0=$(now_us)
	GOOS=${target%/*} GOARCH=${target#*/} go vet "$@" ||
		step_fail "go vet $* for $target failed (see above)"
	echo "$target: $* vetted in $(fmt_secs $(($(now_us) - t0)))"
}
for target in "${LOOP_TARGETS[@]}"; do vet_for "$target" "${LOOP_PKGS[@]}"; done
for target in "${PURE_TARGETS[@]}"; do vet_for "$target" "${PURE_PKGS[@]}"; done
# Where gnet has no poller the loop must fail to build with one error that
# names the systems it runs on, not a cascade of undefined names.
out=$(GOOS=windows GOARCH=amd64 go build ./loop 2>&1) || true
if [ "$(printf '%s\n' "$out" | grep -c 'loop/')" != 1 ] || ! printf '%s\n' "$out" | grep -q loop_builds_only_on_Linux; then
	printf '%s\n' "$out" >&2
	step_fail "GOOS=windows go build ./loop: want the one error of loop/unsupported.go"
fi
echo "windows/amd64: ./loop refused with one error: $(printf '%s\n' "$out" | grep 'loop/')"
if [ "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" = linux/amd64 ]; then
	t0=$(now_us)
	GOARCH=386 go test -count=1 "${PURE_PKGS[@]}" ||
		step_fail "go test ${PURE_PKGS[*]} as 386 binaries failed (see above)"
	echo "linux/386: ${PURE_PKGS[*]} tested in $(fmt_secs $(($(now_us) - t0)))"
else
	echo "the 386 test run of ${PURE_PKGS[*]} needs a linux/amd64 host: skipped"
fi
step_end

# ------------------------------------------------------------------- deps --

APT_UPDATED=""
# apt_update runs apt-get update once per run.
apt_update() {
	if [ -z "$APT_UPDATED" ]; then
		apt-get update -qq && APT_UPDATED=1
	fi
}

# can_apt tells whether this run may install Debian packages (root, apt-get).
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# apt_install PKG [APT-GET OPTION...] installs Debian's PKG quietly; on
# failure it shows the end of apt's output and returns 1.
apt_install() {
	local pkg=$1
	shift
	if { apt_update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$pkg"; } >"$TMP_DIR/apt.log" 2>&1; then
		return 0
	fi
	tail -n 20 "$TMP_DIR/apt.log" >&2
	return 1
}

NODE_DIR=$ROOT/scripts/node
step_begin deps "node test clients (ws from scripts/node/package-lock.json), chromium, promtool"
if [ ! -f "$NODE_DIR/package-lock.json" ]; then
	step_fail "scripts/node/package-lock.json is missing"
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "test.sh: WARNING: npm not found: node clients' dependencies are not installed;" >&2
	echo "test.sh: WARNING: Go tests that drive node clients will skip." >&2
elif [ ! -d "$NODE_DIR/node_modules/ws" ] ||
	[ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/ws" ] ||
	[ "$NODE_DIR/package.json" -nt "$NODE_DIR/node_modules/ws" ]; then
	npm ci --prefix "$NODE_DIR" --no-audit --no-fund ||
		step_fail "npm ci --prefix scripts/node failed (is the lock file in sync with package.json?)"
	# Mark the install as newer than the lock file so later runs skip it.
	touch "$NODE_DIR/node_modules/ws"
else
	echo "scripts/node/node_modules is up to date with the lock file"
fi
if [ -f "$NODE_DIR/node_modules/ws/package.json" ]; then
	export UPGATE_TEST_NODE_MODULES="$NODE_DIR/node_modules"
	echo "UPGATE_TEST_NODE_MODULES=$UPGATE_TEST_NODE_MODULES"
	if ! command -v node >/dev/null 2>&1; then
		echo "test.sh: WARNING: node not found: Go tests that drive node clients will skip." >&2
	fi
else
	echo "test.sh: WARNING: ws is not installed: UPGATE_TEST_NODE_MODULES is not set." >&2
fi
# Headless Chromium for cmd/upgate's browser test, from Debian's packages.
# A failed install is not fatal: that test then skips.
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in "" | 0 | false) on_ci=false ;; *) on_ci=true ;; esac
case "${UPGATE_TEST_SKIP_BROWSER:-}" in
"" | 0) ;;
1)
	if $on_ci; then
		echo "test.sh: UPGATE_TEST_SKIP_BROWSER=1 ignored: CI=$CI always runs the browser test" >&2
		unset UPGATE_TEST_SKIP_BROWSER
	fi
	;;
*)
	echo "test.sh: UPGATE_TEST_SKIP_BROWSER=$UPGATE_TEST_SKIP_BROWSER ignored: set it to 1 to skip the browser test" >&2
	unset UPGATE_TEST_SKIP_BROWSER
	;;
esac
if [ "${UPGATE_TEST_SKIP_BROWSER:-}" = 1 ]; then
	export UPGATE_TEST_SKIP_BROWSER
	echo "UPGATE_TEST_SKIP_BROWSER=1: the browser test skips; chromium is neither checked nor installed"
elif [ -x /usr/bin/chromium ]; then
	echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
elif ! can_apt; then
	echo "test.sh: WARNING: /usr/bin/chromium is absent and cannot be installed here (needs root and apt-get):" >&2
	echo "test.sh: WARNING: the browser test will skip." >&2
else
	echo "test.sh: chromium is absent: installing Debian's chromium package for the browser test now,"
	echo "test.sh: as root: apt-get update && apt-get install -y chromium (UPGATE_TEST_SKIP_BROWSER=1 skips this)"
	if apt_install chromium; then
		echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
	else
		echo "test.sh: WARNING: installing chromium failed (see above): the browser test will skip." >&2
	fi
fi
# promtool for gateway's TestPromtoolCheckRules (promtool check rules on
# deploy/prometheus/upgate-alerts.yml), from Debian's prometheus package,
# without its recommended node exporter. Where systemd runs, the package
# enables and starts a Prometheus server on :9090 (upgate's default admin
# port): only promtool is wanted, so that service is disabled and stopped.
# A failed install is not fatal: the test then skips, except with CI=true,
# where it fails.
if command -v promtool >/dev/null 2>&1; then
	echo "promtool: $(promtool --version 2>&1 | head -1)"
elif ! can_apt; then
	echo "test.sh: WARNING: promtool is absent and cannot be installed here (needs root and apt-get):" >&2
	echo "test.sh: WARNING: the alert rules test will skip (and fail with CI=true)." >&2
else
	echo "installing Debian's prometheus package for promtool (apt-get update && apt-get install -y --no-install-recommends prometheus)"
	if apt_install prometheus --no-install-recommends; then
		if [ -d /run/systemd/system ]; then
			systemctl disable --now prometheus.service >/dev/null 2>&1 || true
		fi
		echo "promtool: $(promtool --version 2>&1 | head -1)"
	else
		echo "test.sh: WARNING: installing prometheus failed (see above): the alert rules test will skip (and fail with CI=true)." >&2
	fi
fi
step_end

# ------------------------------------------------------------------- test --

test_args=()
if [ -n "${UPGATE_TEST_ARGS:-}" ]; then
	read -r -a test_args <<<"$UPGATE_TEST_ARGS"
fi
step_begin test "go test -race -count=1 -timeout 15m${test_args[*]+ ${test_args[*]}} ./..."
if [ "$(go env CGO_ENABLED)" != "1" ]; then
	step_fail "go test -race needs cgo: install a C compiler (gcc) and keep CGO_ENABLED=1"
fi
go test -race -count=1 -timeout 15m ${test_args[@]+"${test_args[@]}"} ./... ||
	step_fail "go test failed (see above)"
# The load generator and the floors of the benchmark (bench/, a module of
# its own: the peers' libraries stay out of upgate's go.mod).
if [ -z "${UPGATE_TEST_ARGS:-}" ]; then
	(cd bench && go test -race -count=1 -timeout 10m ./...) ||
		step_fail "go test of bench/ failed (see above)"
fi
step_end

# Allocation tests (//go:build !race) and the full-size load tests only run
# without the race detector, whose instrumentation allocates and slows.
step_begin test-norace "go test -count=1 -timeout 10m${test_args[*]+ ${test_args[*]}} ./..."
go test -count=1 -timeout 10m ${test_args[@]+"${test_args[@]}"} ./... ||
	step_fail "go test (without -race) failed (see above)"
step_end

# ------------------------------------------------------------------- fuzz --

FUZZTIME=${UPGATE_TEST_FUZZTIME:-20s}

# fuzz_targets prints "DIR NAME" for every FuzzXxx function declared in a
# *_test.go file of the module (testdata, vendor, node_modules and
# dot/underscore directories are not part of the module's packages).
fuzz_targets() {
	find . \( -name node_modules -o -name testdata -o -name vendor -o -name '.?*' -o -name '_*' \) -prune \
		-o -type f -name '*_test.go' -print0 |
		xargs -0 -r grep -HE '^func Fuzz[A-Za-z0-9_]*\(' 2>/dev/null |
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*$|\1 \2|' |
		awk 'substr($2, 5, 1) !~ /[a-z]/' |
		sort -u
}

step_begin fuzz "fuzz smoke (-fuzztime=$FUZZTIME per target)"
if [ "$FUZZTIME" = "0" ] || [ "$FUZZTIME" = "off" ]; then
	echo "UPGATE_TEST_FUZZTIME=$FUZZTIME: fuzz step skipped"
else
	fuzz_targets >"$TMP_DIR/fuzz.list"
	n_fuzz=$(wc -l <"$TMP_DIR/fuzz.list" | tr -d ' ')
	if [ "$n_fuzz" -eq 0 ]; then
		echo "no fuzz targets found: nothing to fuzz"
	else
		echo "$n_fuzz fuzz target(s):"
		sed 's/^/  /' "$TMP_DIR/fuzz.list"
		i=0
		while read -r dir name; do
			i=$((i + 1))
			pkg="$dir/"
			echo "--- fuzz $i/$n_fuzz: $name in $pkg"
			touch "$TMP_DIR/fuzz.marker"
			log="$TMP_DIR/fuzz.$i.log"
			# -fuzzminimizetime: go test minimizes every new interesting input
			# for up to 60 s by default, during which the target runs at
			# 0 execs/s: a 20 s smoke run of FuzzRoundTrip made 1 476 execs
			# that way, and 84 000 with a 1 s budget.
			#
			# Go 1.26's fuzz coordinator can fail a target that found
			# nothing, with "context deadline exceeded" right at the end of
			# -fuzztime and no failing input (golang/go#75804, fixed in Go
			# 1.27): such a run is repeated, twice at most. A failing input
			# is always written and named before the failure, so a real
			# finding is never retried away.
			attempt=1
			while :; do
				if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=1s "$pkg" </dev/null 2>&1 | tee "$log"; then
					fuzz_ok=1
					break
				fi
				fuzz_ok=0
				if [ "$attempt" -lt 3 ] &&
					tail -n 5 "$log" | grep -q "context deadline exceeded" &&
					! grep -q "Failing input written to" "$log" &&
					! { [ -d "$dir/testdata/fuzz/$name" ] && find "$dir/testdata/fuzz/$name" -type f -newer "$TMP_DIR/fuzz.marker" | grep -q .; }; then
					echo "test.sh: $name: the fuzz coordinator's deadline race (golang/go#75804), no failing input: running it again"
					attempt=$((attempt + 1))
					continue
				fi
				break
			done
			if [ "$fuzz_ok" -eq 0 ]; then
				echo >&2
				echo "test.sh: fuzz target $name in $pkg failed." >&2
				crashers=$(
					{
						# New inputs written by this run, and any corpus entry named in the log.
						if [ -d "$dir/testdata/fuzz/$name" ]; then
							find "$dir/testdata/fuzz/$name" -type f -newer "$TMP_DIR/fuzz.marker"
						fi
						grep -oE "(testdata/fuzz/)?$name/[A-Za-z0-9._#-]+" "$log" |
							sed -E "s|^(testdata/fuzz/)?|$dir/testdata/fuzz/|" |
							while read -r f; do [ -f "$f" ] && echo "$f"; done
					} | sed 's|^\./||' | sort -u
				)
				if [ -n "$crashers" ]; then
					echo "test.sh: crashing input(s), kept under testdata/fuzz (commit them as regression seeds once fixed):" >&2
					echo "$crashers" | sed 's/^/  /' >&2
					first=$(echo "$crashers" | head -1)
					echo "test.sh: re-run with: go test -run='^${name}/$(basename "$first")\$' $pkg" >&2
				else
					echo "test.sh: no crasher file found under $dir/testdata/fuzz/$name (see the log above)" >&2
				fi
				step_fail "fuzz target $name in $pkg failed"
			fi
		done <"$TMP_DIR/fuzz.list"
	fi
fi
step_end

# ------------------------------------------------------------------- soak --

step_begin soak "scripts/soak.sh --quick"
./scripts/soak.sh --quick --out "$TMP_DIR/soak" </dev/null ||
	step_fail "scripts/soak.sh --quick failed (summary above)"
step_end

# ------------------------------------------------------------------ bench --

if [ -e scripts/bench.sh ]; then
	if [ -x scripts/bench.sh ]; then
		step_begin bench "scripts/bench.sh --quick"
		./scripts/bench.sh --quick </dev/null || step_fail "scripts/bench.sh --quick failed"
		step_end
	else
		echo
		echo "test.sh: WARNING: scripts/bench.sh exists but is not executable (chmod +x it): bench step skipped" >&2
	fi
fi

echo
echo "test.sh: all steps passed in $(fmt_secs $(($(now_us) - SCRIPT_START)))"
