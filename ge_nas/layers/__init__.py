"""Attention layers that ge-nas places into YOLO models, one block per file.

* :mod:`ge_nas.layers.choices`: the variants and extents of Gather-Excite (no torch needed);
* :mod:`ge_nas.layers.gather_excite`: the ``GatherExcite`` unit;
* :mod:`ge_nas.layers.ge_bottleneck`: a residual bottleneck with a GE unit on its branch.
"""
