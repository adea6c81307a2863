"""regbench's saved record: the one hand-off between measuring (``bench``) and reporting (``reports``).

Rules: the lowest floor of the project. It imports no other regbench package
and no framework; ``records.roles`` imports nothing at all, so the trainer
registry can name its roles without loading pydantic. A saved run is read and
validated whole, once, by ``records.model.validate_run``; files of an older
schema are brought up to the current one there by ``records.upgrade`` alone.
"""
