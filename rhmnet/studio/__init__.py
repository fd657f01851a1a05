"""Scribble studio: segment your own video in the browser (``rhmnet-studio``, ``python -m rhmnet.studio``).

Layers: the studio uses the one streaming inference API (:mod:`rhmnet.inference`) and nothing above it.
"""
