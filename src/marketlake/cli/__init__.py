"""The ``marketlake`` command."""

import gc

# A command imports some 700 modules before it does its work, and every allocation they make
# counts towards CPython's young-generation collection, run every 700 net allocations: about
# 200 collections (60-80 ms) in a run on the defaults. Cyclic garbage is rare here (data lives
# in Arrow buffers, freed by reference counting), so collect young objects less often.
gc.set_threshold(20_000, 10, 10)
