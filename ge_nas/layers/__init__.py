"""Attention layers that ge-nas places into YOLO models, one block per file.

* :mod:`ge_nas.layers.choices`: the modules, and GE's variants and extents (no torch needed);
* :mod:`ge_nas.layers.unit`: what every unit shares (counted operations, an open gate);
* :mod:`ge_nas.layers.gather_excite`: the ``GatherExcite`` unit;
* :mod:`ge_nas.layers.squeeze_excite`, :mod:`~ge_nas.layers.eca`, :mod:`~ge_nas.layers.cbam`,
  :mod:`~ge_nas.layers.coord_attention`, :mod:`~ge_nas.layers.simam`: the other modules;
* :mod:`ge_nas.layers.registry`: a unit made from a placement's choice, and its counts;
* :mod:`ge_nas.layers.ge_bottleneck`: a residual bottleneck with a unit on its branch.
"""
