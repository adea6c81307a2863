"""regbench reports: saved ``pytest bench`` runs → pandas tables, matplotlib charts, comparisons.

Rules: reading a storage folder never modifies it; importing this package
imports no training framework (only pandas and, when charts are drawn,
matplotlib with the Agg backend).
"""
