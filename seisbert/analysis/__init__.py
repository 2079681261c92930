"""Analysis of what the model learned: token views, attention, masked-token confusion, gap
filling. It reads the stages, the model and the tasks; training, inference and the study may
use it; none of the layers below ever import it (tests/test_layout.py checks the direction).
Heavy dependencies (scikit-learn, matplotlib, umap) are imported inside functions, so
importing the package is cheap and does no work.
"""
