"""Ranking a study's architectures: Pareto fronts, the knee, hypervolume, and the tables that hold them.

* :mod:`~ge_nas.ranking.pareto`: the numerics (plain numpy, everything minimised);
* :mod:`~ge_nas.ranking.fronts`: a study's records ranked, the one place fronts are computed;
* :mod:`~ge_nas.ranking.tables`: that ranking as SQL tables in the study's own database;
* :mod:`~ge_nas.ranking.correlation`: how well one scoring ranks like another (Kendall, Spearman).
"""
