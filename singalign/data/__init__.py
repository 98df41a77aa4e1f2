"""Corpus readers. Every corpus becomes records of one manifest schema (see ``manifest``)."""
