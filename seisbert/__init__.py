"""SeisBert: a language of seismic events (PSD tokens + a BERT-style encoder).

Follows the case study "Exploring Foundation Models for Seismic Event Processing"
(Linville, Sandia). Importing the package does no work (no folders, no downloads).
"""

__version__ = "0.1.0"
