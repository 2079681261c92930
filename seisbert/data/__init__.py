"""Record sources (synthetic, waveforms, seisbench) and splits."""
