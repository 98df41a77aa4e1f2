"""Bundles: weights together with the exact configuration that produced them.

A bundle is a folder::

    bundle.json         format, code version, model/feature/decoding config, vocabulary and blank
                        index, separator, LM, SHA-256 of every file, training report, a label
    model.safetensors   the weights
    (separator/...)     optional separator weights
    (lm/...)            optional language model

Inference reads every setting from ``bundle.json``; nothing is retyped. Weights are checked
against their SHA-256 at load time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singalign import __version__
from singalign import constants as C
from singalign.errors import BundleError, MissingWeightsError

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "singalign-bundle"
FORMAT_VERSION = 1
#: Size cap of a bundle that ships (``recipes/make_bundle.py --max-mb``), in MB of 10^6 bytes.
MAX_BUNDLE_MB = 50
#: Where the default bundle lives (inside the package, so an installed package finds it).
DEFAULT_BUNDLE = Path(__file__).resolve().parent / "resources" / "bundles" / "default"


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Bundle:
    """A loaded (or about to be saved) bundle. ``state`` holds the weights as CPU tensors."""

    config: dict[str, Any]
    state: dict[str, Any] = field(repr=False, default_factory=dict)
    path: Path | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_model(
        cls,
        model,
        features,
        separator: dict[str, Any] | None = None,
        decode: dict[str, Any] | None = None,
        lm: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        label: str = "",
    ) -> Bundle:
        """Bundle a SingAlignModel with its feature config (a LogMelConfig)."""
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "code_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "label": label,
            "model": model.cfg.to_dict(),
            "features": features.to_dict(),
            "vocab": list(C.VOCAB),
            "blank_index": C.BLANK_INDEX,
            "frame_rate": [C.FRAME_RATE.numerator, C.FRAME_RATE.denominator],
            "separator": separator or {"kind": "none"},
            "decode": decode or {},
            "lm": lm,
            "training": training or {},
        }
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        return cls(config, state)

    # -- saving / loading --------------------------------------------------------------------
    def save_tuned(
        self, path: str | os.PathLike[str], decode: dict[str, Any], name: str, tuning: dict
    ) -> Path:
        """Save a copy that decodes with ``decode`` (its ``decode`` entry) and records how those values
        were found as ``config[name]`` (e.g. ``lm_tuning``); the copy is loaded back to verify it.
        A bundle whose settings were carried from another (``make_bundle.py --carry``) lists ``name``
        under ``carried_from["retuned"]``: those values were tuned for its own weights."""
        self.config["decode"] = decode
        self.config[name] = tuning
        carried = self.config.get("carried_from")
        if carried is not None:
            carried["retuned"] = sorted({*carried.get("retuned", []), name})
        out = self.save(path)
        Bundle.load(out)
        return out

    def save(
        self,
        path: str | os.PathLike[str],
        extra_files: dict[str, str | os.PathLike[str]] | None = None,
        max_bytes: int | None = None,
    ) -> Path:
        """Write the bundle to ``path`` atomically (a temporary folder renamed into place).

        ``extra_files`` maps a name inside the bundle (e.g. ``separator/vocals.pth``) to a file to copy.
        With ``max_bytes``, a bundle whose files add up to more is not written (BundleError, naming
        the largest files; an existing bundle at ``path`` is left as it was).
        """
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            save_file(self.state, str(tmp / WEIGHTS_FILE))
            files = {WEIGHTS_FILE: sha256_file(tmp / WEIGHTS_FILE)}
            for name, src in (extra_files or {}).items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp / name)
                files[name] = sha256_file(tmp / name)
            if self.path is not None:  # keep files carried by a loaded bundle (separator, LM)
                for name, digest in self.config.get("files", {}).items():
                    if name != WEIGHTS_FILE and name not in files and (self.path / name).exists():
                        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(self.path / name, tmp / name)
                        files[name] = digest
            config = {**self.config, "files": files}
            (tmp / BUNDLE_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            if max_bytes is not None:
                _check_size(tmp, max_bytes, path)
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old.{os.getpid()}")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.path, self.config = path, config
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], verify: bool = True) -> Bundle:
        """Load and verify a bundle folder; raise BundleError naming what is wrong."""
        from safetensors.torch import load_file

        path = Path(path)
        cfg_file = path / BUNDLE_FILE
        if not cfg_file.exists():
            raise BundleError(f"{path}: not a bundle (no {BUNDLE_FILE})")
        try:
            config = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{cfg_file}: unreadable ({exc})") from None
        if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"{cfg_file}: unknown bundle format {config.get('format')} v{config.get('format_version')}"
            )
        if config.get("vocab") != list(C.VOCAB) or config.get("blank_index") != C.BLANK_INDEX:
            raise BundleError(f"{cfg_file}: vocabulary differs from this code's (code version {__version__})")
        weights = path / WEIGHTS_FILE
        if not weights.exists():
            raise MissingWeightsError(f"{weights}: weights file missing from the bundle")
        if verify:
            for name, digest in config.get("files", {}).items():
                f = path / name
                if not f.exists():
                    raise MissingWeightsError(f"{f}: file listed in {BUNDLE_FILE} is missing")
                if sha256_file(f) != digest:
                    raise BundleError(f"{f}: SHA-256 does not match {BUNDLE_FILE} (corrupt or replaced)")
        return cls(config, load_file(str(weights)), path)

    # -- use --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return self.state

    @property
    def model_config(self):
        from singalign.models.config import ModelConfig

        return ModelConfig.from_dict(self.config["model"])

    @property
    def feature_config(self):
        from singalign.features import LogMelConfig

        return LogMelConfig.from_dict(self.config["features"])

    @property
    def trained(self) -> bool:
        return bool(self.config.get("training"))

    def build_model(self):
        """The SingAlignModel with this bundle's weights, in eval mode."""
        from singalign.models import SingAlignModel

        model = SingAlignModel(self.model_config)
        model.load_state_dict(self.state)
        return model.eval()

    def resolve(self, name: str | None) -> Path | None:
        """A path stored in the bundle config: relative to the bundle folder, or absolute."""
        if not name:
            return None
        p = Path(name)
        return p if p.is_absolute() or self.path is None else self.path / p

    def describe(self) -> str:
        m = self.config["model"]
        t = self.config.get("training") or {}
        lines = [
            f"bundle: {self.path}",
            f"label: {self.config.get('label') or '-'}",
            f"model: preset {m['preset']}, mode {m['mode']}",
            f"separator: {self.config['separator'].get('kind')}",
            f"language model: {'yes' if self.config.get('lm') else 'no'}",
            "audio-text head: "
            + (
                f"yes ({', '.join(self.config['head']['config'].get('spaces', []))}; "
                f"{len(self.config['head'].get('tag_vocab') or [])} training tags)"
                if self.config.get("head")
                else "no (search and tagging need one)"
            ),
            f"trained: {'yes' if t else 'NO (random weights)'}",
        ]
        if t:
            lines.append(
                f"training: {t.get('step')} steps, {t.get('train_items')} items, {t.get('train_hours')} h"
            )
        lines.append(f"code version: {self.config.get('code_version')}, created {self.config.get('created')}")
        return "\n".join(lines)


def bundle_size(path: str | os.PathLike[str]) -> dict[str, int]:
    """Bytes of every file in a bundle folder (name inside the bundle -> size), largest first."""
    path = Path(path)
    sizes = {f.relative_to(path).as_posix(): f.stat().st_size for f in path.rglob("*") if f.is_file()}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def _check_size(folder: Path, max_bytes: int, target: Path) -> None:
    sizes = bundle_size(folder)
    total = sum(sizes.values())
    if total > max_bytes:
        top = ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in list(sizes.items())[:3])
        raise BundleError(
            f"{target}: the bundle would be {total / 1e6:.1f} MB, over its cap of {max_bytes / 1e6:.1f} MB "
            f"({top})"
        )


def default_bundle_path() -> Path:
    """The bundled default model; raise MissingWeightsError saying what to do when absent."""
    if not (DEFAULT_BUNDLE / BUNDLE_FILE).exists():
        raise MissingWeightsError(
            f"{DEFAULT_BUNDLE}: no trained default bundle is installed; pass --bundle DIR "
            "(create an untrained one with `singalign bundle init --out DIR`)"
        )
    return DEFAULT_BUNDLE


def init_bundle(
    out: str | os.PathLike[str], preset: str = "small", mode: str = "multitask", seed: int = 0
) -> Path:
    """Write a bundle with freshly initialized (untrained) weights, labelled as such."""
    import torch

    from singalign.features import LogMelConfig
    from singalign.models import SingAlignModel
    from singalign.models import preset as make_preset

    torch.manual_seed(seed)
    model = SingAlignModel(make_preset(preset, mode))
    label = f"UNTRAINED: random weights (preset {preset}, mode {mode}, seed {seed}); outputs are meaningless"
    return Bundle.from_model(model, LogMelConfig(), label=label).save(out)


# ----------------------------------------------------------------------------- CLI


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundle", help="inspect or create model bundles", description="Inspect or create model bundles."
    )
    bsub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    info = bsub.add_parser("info", help="print what a bundle holds and verify its checksums")
    info.add_argument(
        "path", nargs="?", default=None, help="bundle folder (default: the bundled default model)"
    )
    info.set_defaults(func=_cmd_info)
    init = bsub.add_parser(
        "init", help="write an UNTRAINED bundle (random weights), e.g. to start training or test the pipeline"
    )
    init.add_argument("--out", required=True, help="bundle folder to create")
    init.add_argument(
        "--preset",
        default="small",
        help="model size: paper (18 M parameters), medium (6.3 M), small (2.1 M), tiny (tests)",
    )
    init.add_argument("--mode", default="multitask", help="baseline | oracle | multitask | pitch_onset_only")
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=_cmd_init)


def _cmd_info(args: argparse.Namespace) -> int:
    print(Bundle.load(args.path or default_bundle_path()).describe())
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    print(f"wrote {init_bundle(args.out, args.preset, args.mode, args.seed)}")
    return 0
