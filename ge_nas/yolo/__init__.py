"""The only package that imports Ultralytics.

Everything else in ge-nas speaks in its own terms (YAML dicts, paths, metric dicts), so an
Ultralytics upgrade is a change here alone:

* :mod:`~ge_nas.yolo.environment`, :mod:`~ge_nas.yolo.import_hook`: offline and quiet
  settings, and layer registration the moment Ultralytics loads (neither imports torch);
* :mod:`~ge_nas.yolo.registration`: ge-nas layers made resolvable by name in model YAMLs;
* :mod:`~ge_nas.yolo.model_files`: model YAMLs located, checked, baked to one scale,
  described layer by layer, and built;
* :mod:`~ge_nas.yolo.devices`, :mod:`~ge_nas.yolo.costs`: devices; params, GFLOPs, latency;
* :mod:`~ge_nas.yolo.inheritance`, :mod:`~ge_nas.yolo.training`: a parent's weights copied
  into a candidate; proxy, parent and full training runs.
"""
