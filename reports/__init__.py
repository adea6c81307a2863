"""regbench reports: saved ``pytest bench`` runs → pandas tables, matplotlib charts, comparisons.

Rules: reports read saved records (records.model) and nothing else: no module
here imports the trainer registry, a backend, ``bench`` or a framework, so a
run is reported as it was saved, on any machine, whatever is installed there
(tests/test_layers.py holds it). Reading a storage folder never modifies it;
charts are drawn by matplotlib with the Agg backend.
"""
