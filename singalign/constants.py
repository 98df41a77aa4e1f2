"""The time grid and the vocabulary: every other module derives from these.

Frame rates are derived with exact arithmetic (``fractions.Fraction``) so that a
setting changed here cannot silently disagree with another module.
"""

from __future__ import annotations

from fractions import Fraction

#: Sample rate of every model input (Hz). The paper resamples to 16 kHz.
SAMPLE_RATE = 16_000
#: STFT window: 32 ms at 16 kHz.
N_FFT = 512
#: STFT hop: 16 ms at 16 kHz.
HOP_LENGTH = 256
#: Mel bands.
N_MELS = 80

assert Fraction(N_FFT, SAMPLE_RATE) == Fraction(32, 1000), "window must be 32 ms"
assert Fraction(HOP_LENGTH, SAMPLE_RATE) == Fraction(16, 1000), "hop must be 16 ms"

#: Feature frames per second (62.5), exact.
FRAME_RATE = Fraction(SAMPLE_RATE, HOP_LENGTH)
#: The lyrics CRNN max-pools time by 2: CTC frames per second (31.25), exact.
CTC_DOWNSAMPLE = 2
CTC_FRAME_RATE = FRAME_RATE / CTC_DOWNSAMPLE
#: Seconds per feature frame and per CTC frame.
FRAME_SECONDS = 1 / FRAME_RATE
CTC_FRAME_SECONDS = 1 / CTC_FRAME_RATE

#: Training/inference window in feature frames (16 s), as the paper.
SEGMENT_FRAMES = 1000
assert SEGMENT_FRAMES % CTC_DOWNSAMPLE == 0

#: Pitch classes: MIDI 0..127 plus one no-pitch class.
N_MIDI = 128
NO_PITCH = N_MIDI
N_PITCH_CLASSES = N_MIDI + 1

#: CTC vocabulary in index order: blank, space, a-z, then punctuation.
BLANK = "|"
VOCAB: tuple[str, ...] = (BLANK, " ", *"abcdefghijklmnopqrstuvwxyz", ",", ".", "?", "!", "-", "'")
BLANK_INDEX = 0
SPACE_INDEX = 1
assert len(VOCAB) == 34 and VOCAB[BLANK_INDEX] == BLANK
CHAR_TO_INDEX: dict[str, int] = {c: i for i, c in enumerate(VOCAB)}

#: Peak picking for onsets (paper, Section 3.2): 50 ms window (25 ms each side), threshold 0.4.
ONSET_THRESHOLD = 0.4
ONSET_HALF_WINDOW_SECONDS = Fraction(25, 1000)


def seconds_to_frames(seconds: float | Fraction, rate: Fraction = FRAME_RATE) -> int:
    """Frame index that contains time ``seconds`` (floor), as the authors' targets."""
    return int(Fraction(seconds) * rate) if isinstance(seconds, Fraction) else int(seconds * float(rate))


def frames_to_seconds(frame: int | float, rate: Fraction = FRAME_RATE) -> float:
    """Start time in seconds of feature frame ``frame``."""
    return float(frame / rate)


#: Onset half-window in whole feature frames (25 ms -> 1 frame at 16 ms hop; floor).
ONSET_HALF_WINDOW_FRAMES = int(ONSET_HALF_WINDOW_SECONDS * FRAME_RATE)
