"""Analysis of what the model learned: vocabulary quality, token views, attention.

Modules import heavy dependencies (scikit-learn, matplotlib, umap) inside functions,
so importing the package is cheap and does no work. Analysis sits on top: the stages
(data, features, tokenizer, model, tasks) never import it.
"""

from seisbert.figures import save_figure

__all__ = ["save_figure"]
