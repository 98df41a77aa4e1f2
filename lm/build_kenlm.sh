#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm sdist on PyPI (Debian has no KenLM package).
# Usage: lm/build_kenlm.sh VENV   -> VENV/bin/lmplz, VENV/bin/build_binary
set -euo pipefail
venv=${1:-.venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" -m pip download -q --no-deps --no-binary kenlm --no-build-isolation -c constraints.txt -d "$work" kenlm
tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -1)
{
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 &&
    cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)"
} >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "building KenLM failed" >&2; exit 1; }
install -m 755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$venv/bin/"
echo "built $venv/bin/lmplz and $venv/bin/build_binary"
