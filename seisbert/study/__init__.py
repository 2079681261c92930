"""The study: the paper's protocol over every arm (``protocol``), its schema (``config``), the
results table it writes (``results``), the bootstrap behind every interval (``stats``) and the
report generated from that table (``report``)."""
