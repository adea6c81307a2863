"""``python -m reports`` is the ``regbench`` command."""

from reports.cli import main

raise SystemExit(main())
