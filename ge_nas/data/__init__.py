"""Datasets: the built-in synthetic ones ge-nas generates, and checks on a user's own.

* :mod:`~ge_nas.data.synthetic`: ``ge-nas dataset``, one writer for every kind of built-in scene;
* :mod:`~ge_nas.data.shapes`: the ``shapes`` scenes (class = shape), the demo's and the tests' data;
* :mod:`~ge_nas.data.context`: the ``context`` scenes (class = a frame's colour far from the object);
* :mod:`~ge_nas.data.user_dataset`: a user's Ultralytics dataset YAML, checked before a study is touched.
"""
