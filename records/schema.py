"""The record's format version and the names the saved files themselves use: what ``records.model`` validates
against and ``records.upgrade`` upgrades to.

Rules: constants only, importing nothing, so that the model and the upgrade import it and not each other.
"""

#: The record's format. 0: files written before records described themselves; 1: a fit's parameters as w, b and
#: θ; 2: every parameter by name; 3: a fit's ``kind`` names its study alone (every problem's fits are "fit", the
#: problem its own field) and every fit says its size's role (``size``); 4: the seed's problem beyond the tutorial's
#: size is of the fit study too (no "sweep" kind) (records.upgrade reads 0 to 3).
SCHEMA_VERSION = 4
#: The kind of a bandwidth-floor benchmark; every other kind is a trainer's.
FLOOR = "floor"
#: The seed's problem (the tutorial's model): the one a floor that names no problem reads x and y of.
SEED_PROBLEM = "quadratic"
#: A parameter's values are kept in the record up to this many (its shape and norm always).
MAX_VALUES = 1000
#: What a newer file asks of the reader.
UPGRADE_HINT = "pip install -U regbench"
