"""singalign: lyrics, notes and text embeddings from songs.

Implements Deng, Nakamura & Yoshii (ISMIR 2022), "End-to-end lyrics transcription
informed by pitch and onset estimation", plus audio-text heads.
"""

__version__ = "0.1.0"
