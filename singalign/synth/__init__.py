"""Synthetic corpora with exact ground truth, in the real corpora's layouts.

* :mod:`singalign.synth.text`: public-domain sentences (World English Bible), train/held-out portions.
* :mod:`singalign.synth.voice`: eSpeak NG (ctypes, phoneme timings) and Festival voices.
* :mod:`singalign.synth.speech`: read speech in the LibriSpeech layout.
* :mod:`singalign.synth.melody`, :mod:`~singalign.synth.sing`, :mod:`~singalign.synth.accompaniment`,
  :mod:`~singalign.synth.mixing`, :mod:`~singalign.synth.layouts`, :mod:`~singalign.synth.songs`:
  sung songs with accompaniment in the DALI and JamendoLyrics layouts.

Command line: ``singalign synth speech`` and ``singalign synth songs`` (:mod:`singalign.synth.cli`).
"""
