"""Attention views of a pretrained (or fine-tuned) model: the paper's Figs. 8-10.

    python scripts/attention.py --row 12       # one record of the newest cache/mlm model
    python scripts/attention.py --batch 3 --out reports/attention   # 3 per class + index.html

The body lives in ``seisbert.analysis.attention_cli`` (``--help`` lists the options).
"""

from seisbert.analysis.attention_cli import main
from seisbert.logs import setup_logging

if __name__ == "__main__":
    setup_logging()
    main()
