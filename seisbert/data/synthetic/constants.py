"""Recording layout of the synthetic records, shared by every module of the generator."""

SAMPLING_RATE_HZ = 100.0
NPTS = 9000  # 90 s
P_PICK_SAMPLE = 1000  # the catalogue P pick sits 10 s after sample 0
