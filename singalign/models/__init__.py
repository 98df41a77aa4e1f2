"""The paper's CRNNs (and, later, the audio-text heads)."""

from singalign.models.config import MODES, PRESETS, ModelConfig, preset
from singalign.models.crnn import LyricsCRNN, PitchOnsetCRNN, SingAlignModel, compile_cnns, count_parameters

__all__ = [
    "MODES",
    "PRESETS",
    "ModelConfig",
    "preset",
    "LyricsCRNN",
    "PitchOnsetCRNN",
    "SingAlignModel",
    "compile_cnns",
    "count_parameters",
]
