"""Datasets: the built-in synthetic one ge-nas generates, and checks on a user's own.

* :mod:`~ge_nas.data.synthetic`: ``ge-nas dataset``, the demo's and the tests' data;
* :mod:`~ge_nas.data.user_dataset`: a user's Ultralytics dataset YAML, checked before a study is touched.
"""
