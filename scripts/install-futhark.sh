#!/usr/bin/env bash
# Install Debian trixie's `futhark` package into a project-local prefix, without
# touching the system: the .deb and the trixie libraries it needs are downloaded
# with a private apt state, unpacked with `dpkg -x`, and the binary is patched
# (patchelf) to use the prefix's own loader and libraries.
#
# usage: scripts/install-futhark.sh PREFIX PATCHELF
# Prints what it does; exits non-zero with one line on failure.
set -euo pipefail
prefix=$(realpath -m "${1:?usage: install-futhark.sh PREFIX PATCHELF}")
patchelf=${2:?usage: install-futhark.sh PREFIX PATCHELF}
die() { echo "install-futhark: $*" >&2; exit 1; }

[ -x "$prefix/bin/futhark" ] && "$prefix/bin/futhark" --version >/dev/null 2>&1 && {
  echo "install-futhark: $prefix/bin/futhark already installed"; exit 0; }

command -v apt-get >/dev/null || die "apt-get not found: install futhark >= 0.25 yourself and put it on PATH"
command -v dpkg >/dev/null || die "dpkg not found: install futhark >= 0.25 yourself and put it on PATH"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"

# The Debian mirror this machine already uses, asked for the trixie suite.
mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
         | awk '{print $2}' | grep -v security | head -n1 || true)
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"

state="$prefix/.apt"
rm -rf "$state"; mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
echo "deb [signed-by=$keyring] $mirror trixie main" > "$state/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
          -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")

echo "install-futhark: reading the trixie package index from $mirror"
apt-get "${apt_opts[@]}" -qq update || die "apt-get update of the trixie index failed"
# The cmark-gfm library names carry their version: take whatever trixie has.
mapfile -t cmark < <(apt-cache "${apt_opts[@]}" pkgnames libcmark-gfm | grep -E '^libcmark-gfm(-extensions)?[0-9]' | grep -v -- -dev || true)
[ "${#cmark[@]}" -ge 2 ] || die "trixie index has no libcmark-gfm libraries"
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
echo "install-futhark: installed $("$prefix/bin/futhark" --version | head -n1) in $prefix/bin"
