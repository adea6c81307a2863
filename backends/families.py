"""The model families a backend module has code of its own for: the keys of its ``PREPARE`` table, read from
its source without importing it.

Rules: a backend module chooses its code by family through one table, ``PREPARE = {"family": function, ...}``
(a dict literal with string keys, at the module's top level), and that table is the one place the families
are stated: a built-in spec's ``problems`` are derived from it here (backends.builtin). The source is parsed
(``ast``), never imported, so listing the trainers imports no framework (the einops way: a backend is named
without its framework, which is imported on first use). A module that cannot be found or whose table is not
such a literal is a ``ValueError`` naming it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re

#: A top-level ``PREPARE =`` (at the start of a line: not indented, so not inside a function or class).
_ASSIGNMENT = re.compile(r"^PREPARE\s*=", re.MULTILINE)


@functools.cache
def families(module: str) -> tuple[str, ...]:
    """The keys of ``module``'s ``PREPARE`` table, in their order, read from its source."""
    spec = importlib.util.find_spec(module)
    source = spec.loader.get_source(module) if spec is not None and spec.loader is not None else None
    if source is None:
        raise ValueError(f"{module}: no source to read its PREPARE table from")
    # The last top-level assignment is the table Python would see; parsing from it on (not the whole module, a
    # much longer) keeps ``regbench list`` quick.
    found = list(_ASSIGNMENT.finditer(source))
    if not found:
        raise ValueError(f"{module}: no PREPARE table at its top level")
    node = ast.parse(source[found[-1].start() :]).body[0]
    keys = node.value.keys if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) else None
    if not keys or not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
        raise ValueError(f"{module}: PREPARE is not a dict literal of family names")
    return tuple(k.value for k in keys)
