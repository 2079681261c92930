"""Applying a fine-tuned bundle to new recordings.

``seisbert predict`` and ``seisbert evaluate``.
"""
