"""Pixel-based CTE correction (PCTECORR): calwf3's WF3CTE for WFC3/UVIS, vectorised over columns.

Modules, in the order the algorithm uses them: :mod:`.pctetab` (reference table and header
overrides), :mod:`.raz` (amp-rotated CDAB layout), :mod:`.bias` (residual bias per amp),
:mod:`.rnoise` (PCTERNOI estimate), :mod:`.smooth` (read-noise smoothing), :mod:`.readout` (trap
model), :mod:`.invert` (column inversion), :mod:`.uvis` (the step on a raw exposure).
"""
