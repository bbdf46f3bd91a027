"""The search: its settings, how it samples and prunes, the objective, and the runner.

* :mod:`~ge_nas.search.config`: every setting of a search and its defaults, in one place;
* :mod:`~ge_nas.search.sampling`: the space as Optuna parameters, and the samplers;
* :mod:`~ge_nas.search.pruning`: "stop this proxy after this epoch?", whoever decides it;
* :mod:`~ge_nas.search.pareto_pruner`: the Pareto pruner for multi-objective studies;
* :mod:`~ge_nas.search.objective`: one trial: sample, cost, train, record;
* :mod:`~ge_nas.search.runner`: run or resume a search, in one process or several;
* :mod:`~ge_nas.search.retraining`: train architectures longer than a proxy (fidelity, full runs).
"""
