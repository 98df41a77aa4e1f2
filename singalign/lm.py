"""Word n-gram language models for beam search: ``singalign lm build``.

Pipeline (:func:`build_lm`):

1. Every line of the input text is one sentence. It is normalized with
   ``singalign.metrics.normalize_for_scoring`` (``singalign.text.to_vocab_text``, then punctuation
   other than inner apostrophes removed): the words the beam search forms from the model's
   characters (it folds punctuation away, see ``singalign.decode``) and the words WER counts.
2. The ``vocab_size`` most frequent words are kept (ties: alphabetical). Words outside them are
   handled as DeepSpeech did: KenLM's ``--limit_vocab_file`` prunes every n-gram that contains one,
   and their probability mass goes to ``<unk>``; at decoding time pyctcdecode penalizes a word that
   is not in ``unigrams.txt`` (``decode.UNK_SCORE_OFFSET``, scaled by the LM weight).
3. ``lmplz`` (KenLM, modified Kneser-Ney; ``--discount_fallback`` so tiny corpora work) writes
   ``lm.arpa``; ``build_binary`` writes ``lm.bin``: a probing hash (the fastest to query, the
   largest) or a trie, optionally with quantized probabilities/backoffs and compressed pointers
   (:data:`COMPACT`, the layout a bundle ships: the default LM's 34 MB probing binary becomes
   6.5 MB; see ``lm/README.md``).
4. ``unigrams.txt`` (the kept words, most frequent first) and ``lm.json`` (order, vocabulary size,
   source file and its SHA-256, counts, file checksums).

The output folder appears complete or not at all: everything is built in a temporary folder
beside it and renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singalign.errors import SingalignError
from singalign.jsonconfig import JsonConfig

LM_FILES = ("lm.arpa", "lm.bin", "unigrams.txt", "lm.json")
#: What the decoder reads from an LM folder (``singalign.decode``); a bundle carries only these.
DECODER_FILES = ("lm.bin", "unigrams.txt")
#: The compact binary layout (``build_binary -q 8 -b 8 -a 22 trie``): a bit-packed trie, 8-bit
#: quantized log-probabilities and backoffs, pointers compressed with an offset array of up to 22
#: bits. Bundles ship this layout (their cap is 50 MB; the model alone is about 9 MB).
COMPACT = {"binary_type": "trie", "quantize_bits": 8, "backoff_bits": 8, "pointer_bits": 22}
_LAYOUT_KEYS = tuple(COMPACT)


@dataclass(frozen=True)
class LMConfig(JsonConfig):
    """How an LM is built.

    Attributes:
        order: n-gram order (paper: 5).
        vocab_size: words kept, most frequent first (paper: 200,000).
        prune: lmplz ``--prune`` thresholds per order (empty: no pruning; "0 0 1" drops singleton
            trigrams and above, which keeps a LibriSpeech-sized model small).
        memory: lmplz/build_binary sorting memory (GNU sort syntax), or ``"auto"``: 20 times the
            normalized corpus size (at least 64 MB, at most 25% of the RAM). lmplz touches all
            of it, so a fixed share of a large machine's RAM costs seconds on a tiny corpus.
        binary_type: ``probing`` (fast) or ``trie`` (small).
        quantize_bits: ``build_binary -q``: bits per quantized log-probability (trie only; 0: off).
        backoff_bits: ``build_binary -b``: bits per quantized backoff (0: as ``quantize_bits``).
        pointer_bits: ``build_binary -a``: pointer compression, the most bits the offset array
            encodes (trie only; 0: off).
    """

    order: int = 5
    vocab_size: int = 200_000
    prune: tuple[int, ...] = ()
    memory: str = "auto"
    binary_type: str = "probing"
    quantize_bits: int = 0
    backoff_bits: int = 0
    pointer_bits: int = 0


def check_layout(config: LMConfig) -> None:
    """Raise SingalignError if ``config``'s binary layout is not one ``build_binary`` can write."""
    if config.binary_type not in ("probing", "trie"):
        raise SingalignError(f"binary type must be probing or trie, not {config.binary_type!r}")
    if config.binary_type == "probing" and (
        config.quantize_bits or config.backoff_bits or config.pointer_bits
    ):
        raise SingalignError("quantization and pointer compression need the trie binary type")
    if config.backoff_bits and not config.quantize_bits:
        raise SingalignError("backoff_bits needs quantize_bits")
    for name in ("quantize_bits", "backoff_bits"):
        bits = getattr(config, name)
        if not 0 <= bits <= 25:  # KenLM's quantizer takes 1..25 bits
            raise SingalignError(f"{name} must be 0 (off) or within 1..25, not {bits}")
    if not 0 <= config.pointer_bits <= 255:  # build_binary reads -a as one byte
        raise SingalignError(f"pointer_bits must be within 0..255, not {config.pointer_bits}")


def binary_args(config: LMConfig) -> list[str]:
    """``build_binary`` arguments for the layout of ``config``, e.g. ``-q 8 -b 8 -a 22 trie``."""
    check_layout(config)
    args = []
    if config.quantize_bits:
        args += ["-q", str(config.quantize_bits), "-b", str(config.backoff_bits or config.quantize_bits)]
    if config.pointer_bits:
        args += ["-a", str(config.pointer_bits)]
    return [*args, config.binary_type]


def layout_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The binary layout recorded in an ``lm.json`` (older files: probing, no quantization)."""
    defaults = LMConfig()
    return {k: meta.get(k, getattr(defaults, k)) for k in _LAYOUT_KEYS}


def kenlm_tool(name: str) -> Path:
    """Path of KenLM's ``lmplz``/``build_binary``: beside the Python interpreter, else on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return here
    found = shutil.which(name)
    if found:
        return Path(found)
    raise SingalignError(
        f"KenLM's {name} is not installed: run `make kenlm` (builds lmplz and build_binary into .venv/bin)"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _normalize_corpus(text_path: Path, out_path: Path, progress: bool) -> tuple[Counter, int]:
    """Write one normalized sentence per line to ``out_path``; returns word counts and sentences."""
    from tqdm import tqdm

    from singalign.metrics import normalize_for_scoring

    counts: Counter = Counter()
    n = 0
    size = text_path.stat().st_size
    try:
        with (
            open(text_path, encoding="utf-8", errors="strict") as src,
            open(out_path, "w", encoding="utf-8") as dst,
            tqdm(total=size, unit="B", unit_scale=True, desc="normalize", disable=not progress) as bar,
        ):
            for line in src:
                bar.update(len(line.encode("utf-8")))
                norm = normalize_for_scoring(line)
                if norm:
                    words = norm.split()
                    counts.update(words)
                    dst.write(norm + "\n")
                    n += 1
    except UnicodeDecodeError as exc:
        raise SingalignError(f"{text_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return counts, n


def _total_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise SingalignError(f"{what} failed (exit {proc.returncode}): {tail}")


def build_lm(
    text_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: LMConfig = LMConfig(),
    progress: bool = True,
    source: str | None = None,
) -> dict[str, Any]:
    """Build an n-gram LM from a text file (one sentence per line) into ``out_dir``.

    Args:
        text_path: UTF-8 text, one sentence per line (any case, punctuation, digits).
        out_dir: folder to create (replaced if it exists); receives :data:`LM_FILES`.
        config: order, vocabulary size, pruning.
        progress: show a progress bar while normalizing.
        source: description of the text for ``lm.json`` (default: the file's path).

    Returns:
        The contents of ``lm.json``.
    """
    text_path, out_dir = Path(text_path), Path(out_dir)
    if not text_path.is_file():
        raise SingalignError(f"{text_path}: text file not found")
    if config.order < 1 or config.vocab_size < 1:
        raise SingalignError("order and vocab_size must be at least 1")
    check_layout(config)
    lmplz, build_binary = kenlm_tool("lmplz"), kenlm_tool("build_binary")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the LM folder is an ordinary output
    try:
        corpus = tmp / "corpus.txt"
        counts, n_sentences = _normalize_corpus(text_path, corpus, progress)
        if not counts:
            raise SingalignError(f"{text_path}: no words after normalization")
        kept = sorted(counts, key=lambda w: (-counts[w], w))[: config.vocab_size]
        (tmp / "unigrams.txt").write_text("".join(w + "\n" for w in kept), encoding="utf-8")
        cmd = [str(lmplz), "-o", str(config.order), "--text", str(corpus), "--arpa", str(tmp / "lm.arpa")]
        memory = config.memory
        if memory == "auto":
            memory = (
                "25%"
                if corpus.stat().st_size * 20 > _total_ram() // 4
                else f"{max(64 << 20, corpus.stat().st_size * 20)}b"
            )
        cmd += ["-S", memory, "-T", str(tmp), "--discount_fallback"]
        if len(kept) < len(counts):
            cmd += ["--limit_vocab_file", str(tmp / "unigrams.txt")]
        if config.prune:
            cmd += ["--prune", *map(str, config.prune)]
        _run(cmd, "lmplz")
        _run(
            [
                str(build_binary),
                "-S",
                memory,
                *binary_args(config),
                str(tmp / "lm.arpa"),
                str(tmp / "lm.bin"),
            ],
            "build_binary",
        )
        corpus.unlink()
        meta = {
            **config.to_dict(),
            "vocab_size": len(kept),
            "vocab_size_requested": config.vocab_size,
            "n_distinct_words": len(counts),
            "n_sentences": n_sentences,
            "n_words": sum(counts.values()),
            "oov_rate": 1.0 - sum(counts[w] for w in kept) / sum(counts.values()),
            "source": source or str(text_path),
            "source_sha256": sha256_file(text_path),
            "normalization": "singalign.metrics.normalize_for_scoring",
            "files": {name: sha256_file(tmp / name) for name in ("lm.arpa", "lm.bin", "unigrams.txt")},
        }
        (tmp / "lm.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return meta


def write_binary(
    arpa: str | os.PathLike[str], out: str | os.PathLike[str], config: LMConfig = LMConfig(**COMPACT)
) -> Path:
    """Write the KenLM binary of an ARPA file in the layout of ``config`` (atomically).

    Args:
        arpa: an ARPA file (e.g. the ``lm.arpa`` of an LM folder).
        out: the binary to write (replaced if it exists).
        config: only its layout fields (``binary_type``, ``quantize_bits``, ...) and ``memory`` are used.

    Returns:
        ``out``.
    """
    arpa, out = Path(arpa), Path(out)
    if not arpa.is_file():
        raise SingalignError(f"{arpa}: ARPA file not found (a binary can only be rebuilt from it)")
    args = binary_args(config)
    memory = config.memory
    if memory == "auto":  # the trie sorts its n-grams: a few times the ARPA is plenty
        memory = f"{min(_total_ram() // 4, max(64 << 20, 2 * arpa.stat().st_size))}b"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _run([str(kenlm_tool("build_binary")), "-S", memory, *args, str(arpa), str(tmp)], "build_binary")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def bundle_files(
    lm_dir: str | os.PathLike[str], work_dir: str | os.PathLike[str], layout: dict[str, Any] | None = COMPACT
) -> tuple[dict[str, Any], dict[str, Path]]:
    """What a model bundle carries of an LM folder: the decoder's binary and word list, never the ARPA.

    Args:
        lm_dir: a folder written by :func:`build_lm`.
        work_dir: where a binary in ``layout`` is written when ``lm.bin`` is in another layout.
        layout: the binary layout to ship (default :data:`COMPACT`); None: ``lm.bin`` as it is.

    Returns:
        The bundle's ``lm`` entry (``binary``/``unigrams`` paths inside the bundle, the ``lm.json``
        facts, the binary's layout, the SHA-256 of the ARPA it was built from) and the files to copy
        (name inside the bundle -> file).
    """
    lm_dir = Path(lm_dir)
    meta_file = lm_dir / "lm.json"
    if not meta_file.is_file():
        raise SingalignError(f"{lm_dir}: not an LM folder (no lm.json; build one with `singalign lm build`)")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    for name in DECODER_FILES:
        if not (lm_dir / name).is_file():
            raise SingalignError(f"{lm_dir / name}: missing from the LM folder")
    binary = lm_dir / "lm.bin"
    have = layout_of(meta)
    if layout is not None and have != layout_of(layout):
        cfg = LMConfig(**layout_of(layout))
        binary = write_binary(lm_dir / "lm.arpa", Path(work_dir) / "lm.bin", cfg)
        have = layout_of(layout)
    files = meta.get("files", {})
    entry = {
        "binary": "lm/lm.bin",
        "unigrams": "lm/unigrams.txt",
        **{k: v for k, v in meta.items() if k != "files"},
        **have,
        "arpa_sha256": files.get("lm.arpa"),
    }
    return entry, {"lm/lm.bin": binary, "lm/unigrams.txt": lm_dir / "unigrams.txt"}


def _swap_into_place(new: Path, target: Path) -> None:
    """Rename the finished folder ``new`` onto ``target`` (an existing one is replaced)."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


#: The default English LM: a 5-gram in the compact layout a bundle ships.
DEFAULT_LM_CONFIG = LMConfig(order=5, **COMPACT)


#: The texts ``build_default_lm`` builds from (``singalign lm build --default [--lyrics]``).
DEFAULT_TEXTS = ("sentences", "lyrics")


def default_lm_text(text: str = "sentences") -> tuple[list[str], str]:
    """(lines, source description) of a default LM's text, from the *train* portion of the
    synthetic corpora's public-domain text (``singalign.synth.text``).

    ``"sentences"``: every sentence. ``"lyrics"``: only the lyric lines (3-8 words, each among the
    ``DEFAULT_LYRICS_VOCAB`` most frequent), those of one sentence on one line: the pool the
    synthetic training songs draw their lyrics from, so an in-domain LM, as one built from DALI's
    training lyrics would be for DALI.
    """
    from singalign.synth import text as synth_text

    if text == "sentences":
        return synth_text.sentences(portion="train"), "World English Bible (public domain), train portion"
    if text != "lyrics":
        raise SingalignError(f"default LM text {text!r}: one of {', '.join(DEFAULT_TEXTS)}")
    by_sentence: dict[int, list[str]] = {}
    for line in synth_text.lyric_lines("train", synth_text.DEFAULT_LYRICS_VOCAB):
        by_sentence.setdefault(line.sentence_index, []).extend(line.words)
    source = (
        "World English Bible (public domain), train portion, lyric lines of the "
        f"{synth_text.DEFAULT_LYRICS_VOCAB}-word synthetic lyrics vocabulary"
    )
    return [" ".join(words) for words in by_sentence.values()], source


def build_default_lm(
    out_dir: str | os.PathLike[str],
    config: LMConfig = DEFAULT_LM_CONFIG,
    progress: bool = True,
    text: str = "sentences",
) -> dict:
    """A default English LM from the *train* portion of the synthetic corpora's public-domain text
    (``default_lm_text``: every sentence, or with ``text="lyrics"`` the lyric lines only).

    The text is the World English Bible (``singalign.synth.text``, public domain); the held-out
    portion (the synthetic test lyrics) is never seen by this LM. By default its binary is in the
    :data:`COMPACT` layout (6.5 MB instead of 34 MB probing), the one a bundle ships. On 40 dev
    songs with the 2026-12-03 default model, beam search with the lyrics LM had WER 55.3%, with the
    sentences LM 57.9% (each with its own tuned weights; ``recipes/tune_lm.py --lm``).
    """
    lines, source = default_lm_text(text)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", suffix=".txt", dir=out_dir.parent, delete=False, encoding="utf-8"
    ) as f:
        f.write("".join(s + "\n" for s in lines))
        name = f.name
    try:
        return build_lm(name, out_dir, config, progress, source=source)
    finally:
        os.unlink(name)


# ----------------------------------------------------------------------------- CLI


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lm",
        help="build the n-gram language model for beam search",
        description="Word n-gram language models (KenLM) for CTC beam search.",
    )
    lsub = p.add_subparsers(dest="lm_command", metavar="LM_COMMAND")
    b = lsub.add_parser(
        "build",
        help="build an LM from a text file",
        description=(
            "Build a KenLM n-gram from a UTF-8 text file (one sentence per line). The text is normalized "
            "as WER scoring does (lower case, accents stripped, numbers spelled out, punctuation removed "
            "except apostrophes inside words); the VOCAB_SIZE most frequent words are kept, n-grams with "
            "other words are pruned (their mass goes to <unk>). Writes OUT/lm.arpa, OUT/lm.bin, "
            "OUT/unigrams.txt and OUT/lm.json. Needs KenLM's lmplz (`make kenlm`). Use --default instead "
            "of --text for the default English LM (public-domain text, train portion; --lyrics: its lyric lines "
            "only). Binary layout: "
            "probing for --text, --compact (trie -q 8 -b 8 -a 22, what bundles ship) for --default, unless "
            "--compact, --binary-type, --quantize, --backoff-bits or --pointer-bits say otherwise."
        ),
    )
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text file, one sentence per line")
    src.add_argument(
        "--default",
        action="store_true",
        help="build the default English LM from the synthetic corpora's train text (World English Bible)",
    )
    b.add_argument(
        "--lyrics",
        action="store_true",
        help="with --default: only the text's lyric lines in the synthetic songs' vocabulary (an in-domain "
        "LM for the synthetic songs, as DALI's training lyrics would be for DALI)",
    )
    b.add_argument("--order", type=int, default=5, help="n-gram order (default: %(default)s)")
    b.add_argument("--vocab-size", type=int, default=200_000, help="words kept (default: %(default)s)")
    b.add_argument(
        "--prune", type=int, nargs="+", default=[], help="lmplz --prune thresholds per order, e.g. 0 0 1"
    )
    b.add_argument(
        "--memory", default="auto", help="sorting memory for lmplz, e.g. 4G or 25%% (default: %(default)s)"
    )
    b.add_argument(
        "--compact",
        action="store_true",
        help="trie, 8-bit quantized, compressed pointers (build_binary -q 8 -b 8 -a 22 trie): the layout "
        "bundles ship, about a fifth of probing",
    )
    b.add_argument(
        "--binary-type",
        choices=("probing", "trie"),
        default=None,
        help="KenLM binary layout (default: probing; trie when quantizing or compressing pointers)",
    )
    b.add_argument("--quantize", type=int, default=None, metavar="BITS", help="build_binary -q (trie only)")
    b.add_argument(
        "--backoff-bits", type=int, default=None, metavar="BITS", help="build_binary -b (default: --quantize)"
    )
    b.add_argument(
        "--pointer-bits", type=int, default=None, metavar="BITS", help="build_binary -a (trie only)"
    )
    b.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _layout_from_args(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        k: v
        for k, v in (
            ("binary_type", args.binary_type),
            ("quantize_bits", args.quantize),
            ("backoff_bits", args.backoff_bits),
            ("pointer_bits", args.pointer_bits),
        )
        if v is not None
    }
    if args.compact:
        if given:
            raise SingalignError("--compact sets the whole binary layout: give it alone")
        return dict(COMPACT)
    if not given:
        return dict(COMPACT) if args.default else {}
    if "binary_type" not in given and (given.get("quantize_bits") or given.get("pointer_bits")):
        given["binary_type"] = "trie"  # only the trie quantizes or compresses pointers
    return given


def _cmd_build(args: argparse.Namespace) -> int:
    cfg = LMConfig(
        order=args.order,
        vocab_size=args.vocab_size,
        prune=tuple(args.prune),
        memory=args.memory,
        **_layout_from_args(args),
    )
    if args.lyrics and not args.default:
        raise SingalignError("--lyrics goes with --default")
    if args.default:
        meta = build_default_lm(args.out, cfg, not args.quiet, "lyrics" if args.lyrics else "sentences")
    else:
        meta = build_lm(args.text, args.out, cfg, progress=not args.quiet)
    print(
        json.dumps(
            {
                **{
                    k: meta[k]
                    for k in ("order", "vocab_size", "n_sentences", "n_words", "oov_rate", "source")
                },
                "binary": " ".join(binary_args(cfg)),
                "bytes": {name: os.path.getsize(Path(args.out) / name) for name in ("lm.arpa", "lm.bin")},
            }
        )
    )
    return 0
