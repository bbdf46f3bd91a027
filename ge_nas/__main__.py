"""``python -m ge_nas`` is the ``ge-nas`` command."""

from ge_nas.cli import main

main()
