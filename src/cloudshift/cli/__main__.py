"""``python -m cloudshift.cli``: the same as the ``cloudshift`` command."""

from cloudshift.cli import main

main()
