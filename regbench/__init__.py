"""The ``regbench`` command: the top floor, over ``reports`` (saved records), ``bench`` (measuring) and ``backends``.

Rules: nothing below imports it. ``regbench.cli`` parses and dispatches,
``regbench.run`` supervises a benchmark run, ``regbench.store`` adds a run to
the storage, ``regbench.false_alarm`` measures how often ``compare`` cries wolf.
"""
