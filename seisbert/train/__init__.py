"""The training layer: one ``train.py`` job (``job``: validate, prepare, run its task), the
pretraining, fine-tuning and baseline tasks as runs (``pretrain``, ``finetune``, ``baseline``),
and the trainer, callbacks and loggers they share (``common``, ``loggers``)."""
