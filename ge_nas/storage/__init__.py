"""Where studies live: Optuna's RDB storage (SQLite by default, any SQLAlchemy URL).

* :mod:`~ge_nas.storage.database`: URLs (passwords masked), engines, opening a storage;
* :mod:`~ge_nas.storage.studies`: creating, resuming and loading a study;
* :mod:`~ge_nas.storage.records`: THE trial record, how a trial is written and read;
* :mod:`~ge_nas.storage.workers`: which worker runs a trial, and failing those of dead workers.

Nothing here imports torch or Ultralytics.
"""
