"""The embedded synthetic source (``data=synthetic``): config and driver in ``source``,
events and stations in ``catalog``, amplitude spectra in ``spectra``, time series in
``waveforms``, the physics checks in ``checks``. See ``docs/synthetic.md``."""

from seisbert.data.synthetic.constants import NPTS, P_PICK_SAMPLE, SAMPLING_RATE_HZ
from seisbert.data.synthetic.source import SyntheticSource

__all__ = ["NPTS", "P_PICK_SAMPLE", "SAMPLING_RATE_HZ", "SyntheticSource"]
