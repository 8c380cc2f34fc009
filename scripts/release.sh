#!/usr/bin/env bash
# Builds upgate's release binaries: static (CGO_ENABLED=0), -trimpath, with
# the version stamped in (upgate version prints it), for Linux on amd64 and
# arm64, and a SHA256SUMS file in sha256sum's format (check it with
# sha256sum -c SHA256SUMS).
#
# Usage: scripts/release.sh [OUTDIR]     (default: dist/ in the repository)
#
# Writes into OUTDIR:
#   upgate-VERSION-linux-amd64
#   upgate-VERSION-linux-arm64
#   SHA256SUMS
#
# Environment:
#   UPGATE_VERSION  the version to stamp (default: git describe --tags
#                   --always --dirty, e.g. v1.2.0, v1.2.0-3-g1a2b3c4-dirty)
set -euo pipefail

if [ $# -gt 1 ]; then
	echo "usage: scripts/release.sh [OUTDIR]" >&2
	exit 2
fi
# OUTDIR is relative to where the script was called from.
OUT=${1:-}
case $OUT in
"") ;;
/*) ;;
*) OUT=$PWD/$OUT ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/dist}

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "release.sh: go not found on PATH (nor in /usr/local/go/bin)" >&2
	exit 1
fi

VERSION=${UPGATE_VERSION:-}
if [ -z "$VERSION" ]; then
	if ! VERSION=$(git describe --tags --always --dirty 2>/dev/null); then
		echo "release.sh: not a git work tree: set UPGATE_VERSION" >&2
		exit 1
	fi
fi
# The version becomes part of file names and of a linker flag.
if ! [[ $VERSION =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
	echo "release.sh: version \"$VERSION\": want letters, digits and . _ + - only" >&2
	exit 1
fi

if command -v sha256sum >/dev/null 2>&1; then
	SHA256=(sha256sum)
elif command -v shasum >/dev/null 2>&1; then
	SHA256=(shasum -a 256)
else
	echo "release.sh: neither sha256sum nor shasum found" >&2
	exit 1
fi

mkdir -p "$OUT"
files=()
for arch in amd64 arm64; do
	name=upgate-$VERSION-linux-$arch
	echo "release.sh: $OUT/$name"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
		go build -trimpath -ldflags "-X main.version=$VERSION" -o "$OUT/$name" ./cmd/upgate
	files+=("$name")
done
(cd "$OUT" && "${SHA256[@]}" "${files[@]}" >SHA256SUMS)
echo "release.sh: $OUT/SHA256SUMS"
