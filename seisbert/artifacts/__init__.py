"""The artifact layer: every stage's cached folder (``paths``), hashing, atomic publishing and
verification (``cache``), and the memory-mapped arrays they hold (``arrays``)."""
