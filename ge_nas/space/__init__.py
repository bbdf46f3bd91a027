"""What may vary, and one choice of it.

* :mod:`~ge_nas.space.search_space`: search space files, resolved against their base model;
* :mod:`~ge_nas.space.candidate`: a candidate, one choice (or none) per insertion point;
* :mod:`~ge_nas.space.model_yaml`: a candidate as a runnable Ultralytics model YAML.
"""
