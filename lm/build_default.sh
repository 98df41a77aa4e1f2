#!/usr/bin/env bash
# Build the default English LM (5-gram over the World English Bible, public domain; the *train*
# portion of singalign.synth.text, so the held-out synthetic lyrics stay unseen) into OUTDIR.
# lm.bin is the compact binary bundles ship (trie, 8-bit quantized, compressed pointers: 6.5 MB;
# `singalign lm build --default --binary-type probing` writes the 34 MB hash table instead).
# Usage: lm/build_default.sh OUTDIR [VENV]   (needs KenLM: `make kenlm`; takes about 6 s)
set -euo pipefail
out=${1:?usage: lm/build_default.sh OUTDIR [VENV]}
venv=${2:-.venv}
"$venv/bin/python" -m singalign.cli lm build --default --order 5 --out "$out" --quiet
