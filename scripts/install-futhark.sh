#!/usr/bin/env bash
# Install Debian's `futhark` package (from the suite $FUTHARK_SUITE, sid unless
# set) into a project-local prefix, without touching the system: the .deb and
# the libraries of that suite it needs are downloaded with a private apt state,
# unpacked with `dpkg -x`, and the binary is patched (patchelf) to use the
# prefix's own loader and libraries.
#
# llaf needs Futhark 0.25.32 or newer (0.25.x): 0.25.27, trixie's, crashes in
# its fusion pass on `vjp` through a Llama block (issue 18); sid has 0.25.32.
# A prefix holding an older compiler is replaced.
#
# usage: scripts/install-futhark.sh PREFIX PATCHELF
# Prints what it does; exits non-zero with one line on failure.
set -euo pipefail
prefix=$(realpath -m "${1:?usage: install-futhark.sh PREFIX PATCHELF}")
patchelf=${2:?usage: install-futhark.sh PREFIX PATCHELF}
die() { echo "install-futhark: $*" >&2; exit 1; }

suite=${FUTHARK_SUITE:-sid}
required=0.25.32
# whether Futhark version $1 (x.y.z) is at least $required
recent() { [ "$(printf '%s\n%s\n' "$required" "$1" | sort -V | head -n1)" = "$required" ]; }
version() { "$1" --version 2>/dev/null | head -n1 | sed -E 's/^Futhark ([0-9.]*[0-9]).*/\1/'; }

if [ -x "$prefix/bin/futhark" ] && have=$(version "$prefix/bin/futhark") && [ -n "$have" ]; then
  recent "$have" && { echo "install-futhark: $prefix/bin/futhark $have already installed"; exit 0; }
  echo "install-futhark: $prefix/bin/futhark is $have; replacing it (llaf needs $required or newer)"
  rm -rf "$prefix"
fi

command -v apt-get >/dev/null || die "apt-get not found: install futhark >= 0.25 yourself and put it on PATH"
command -v dpkg >/dev/null || die "dpkg not found: install futhark >= 0.25 yourself and put it on PATH"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"

# The Debian mirror this machine already uses, asked for the suite.
mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
         | awk '{print $2}' | grep -v security | head -n1 || true)
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"

state="$prefix/.apt"
rm -rf "$state"; mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
echo "deb [signed-by=$keyring] $mirror $suite main" > "$state/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
          -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")

echo "install-futhark: reading the $suite package index from $mirror"
apt-get "${apt_opts[@]}" -qq update || die "apt-get update of the $suite index failed"
# The cmark-gfm library names carry their version: take whatever the suite has.
mapfile -t cmark < <(apt-cache "${apt_opts[@]}" pkgnames libcmark-gfm | grep -E '^libcmark-gfm(-extensions)?[0-9]' | grep -v -- -dev || true)
[ "${#cmark[@]}" -ge 2 ] || die "$suite index has no libcmark-gfm libraries"
pkgs=(futhark libc6 libgmp10 libffi8 libnuma1 libtinfo6 zlib1g "${cmark[@]}")
echo "install-futhark: downloading ${pkgs[*]}"
(cd "$state/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}") || die "apt-get download failed"
for deb in "$state/debs"/*.deb; do dpkg -x "$deb" "$prefix"; done
[ -x "$prefix/usr/bin/futhark" ] || die "the futhark package did not contain usr/bin/futhark"

mkdir -p "$prefix/bin"
cp "$prefix/usr/bin/futhark" "$prefix/bin/futhark.tmp"
"$patchelf" --set-interpreter "$prefix/usr/lib64/ld-linux-x86-64.so.2" \
  --set-rpath "$prefix/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu" "$prefix/bin/futhark.tmp" \
  || die "patchelf failed"
mv "$prefix/bin/futhark.tmp" "$prefix/bin/futhark"
rm -rf "$state"
"$prefix/bin/futhark" --version >/dev/null 2>&1 || die "the patched futhark does not run"
have=$(version "$prefix/bin/futhark")
recent "$have" || die "$suite's futhark is $have; llaf needs $required or newer (set FUTHARK_SUITE)"
echo "install-futhark: installed $("$prefix/bin/futhark" --version | head -n1) in $prefix/bin"
