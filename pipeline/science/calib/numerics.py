"""Helpers for float32 images computed with double intermediates, as hstcal's C does.

hstcal stores pixels as float and evaluates expressions with double operands in double
(``Pix = (float)(double expr)``). Doing that on whole 4096 x 2051 arrays costs a double-size copy
per operation; working through blocks of rows keeps the double temporaries in cache.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Rows per block: 128 rows x 4206 columns x 8 bytes = 4.3 MB of double temporaries.
BLOCK_ROWS = 128


def row_blocks(nrows: int, block: int = BLOCK_ROWS) -> Iterator[slice]:
    for start in range(0, nrows, block):
        yield slice(start, min(start + block, nrows))
