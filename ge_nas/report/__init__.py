"""What a search found, for people: the terminal view, list/show/export, and the dashboard.

* :mod:`~ge_nas.report.terminal`: a search's live rows and its final front table;
* :mod:`~ge_nas.report.architectures`: ``ge-nas list``, ``show`` and ``export`` as functions;
* :mod:`~ge_nas.report.dashboard`, :mod:`~ge_nas.report.dashboard_server`: the Pareto dashboard,
  as one offline HTML file (its page is ``dashboard_page.html``) or a live local server.
"""
