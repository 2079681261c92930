"""Analysis of what the model learned: vocabulary quality, token views, attention.

Modules import heavy dependencies (scikit-learn, matplotlib, umap) inside functions,
so importing the package is cheap and does no work.
"""
