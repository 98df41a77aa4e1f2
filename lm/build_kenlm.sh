#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm sdist on PyPI (Debian has no KenLM package).
# Usage: lm/build_kenlm.sh VENV   -> VENV/bin/lmplz, VENV/bin/build_binary
# Needs cmake, a C++ compiler and Boost (program_options, system, thread, test), zlib, bz2, lzma:
# all listed in deps/apt.txt. Takes about 2-3 minutes on 2 cores.
set -euo pipefail
venv=${1:-.venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pipdl() { "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps -c constraints.txt -d "$work" "$@" kenlm; }
# Only the kenlm sdist is wanted. `--no-binary :all:` would also force pip to build kenlm's build
# dependencies (cmake!) from source just to read the sdist's metadata, which takes over 10 minutes;
# so force source for kenlm only and read its metadata with the venv's own setuptools. If the venv
# has no setuptools, fall back to an isolated build environment (downloads the cmake wheel).
pipdl --no-binary kenlm --no-build-isolation 2>/dev/null || pipdl --no-binary kenlm
tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -1)
# Compiler output (many deprecation warnings from Boost) goes to a log shown only on failure.
log="$work/build.log"
{ cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
    && cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)"; } >"$log" 2>&1 \
  || { tail -40 "$log" >&2; echo "building KenLM failed (see above)" >&2; exit 1; }
install -m 755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$venv/bin/"
# Smoke test: a 3-word corpus must give a valid ARPA file.
printf 'a b c\nb c a\n' | "$venv/bin/lmplz" -o 2 --discount_fallback -S 10% -T "$work" 2>/dev/null | grep -q '^\\data\\' \
  || { echo "lmplz was built but does not run" >&2; exit 1; }
echo "built $venv/bin/lmplz and $venv/bin/build_binary"
