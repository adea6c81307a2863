"""Which trainers exist: regbench's own and every installed plugin's, found through entry points.

Rules: a distribution declares trainers in the entry-point group ``regbench.trainers``; the entry point's
object is a ``TrainerSpec`` or a tuple of them, in a module that imports no framework. regbench's own go
through the same loader (backends.builtin, by an entry point made by hand where regbench was never
pip-installed). Nothing a plugin does breaks the suite: an entry point that fails to load, an object that
is not specs, a malformed spec, an id that is taken (a built-in's cannot be shadowed), a role that is taken,
each becomes one ``Broken`` line naming the distribution, and every other trainer stays. Loading imports
the spec modules only; a backend module is imported when its trainer is probed or used (backends._registry).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint

from backends.spec import TrainerSpec
from records.roles import BASELINE, REFERENCE
from records.sources import Broken, Source, failure, installed, plugin_code

GROUP = "regbench.trainers"
#: regbench's own entry point, as pyproject.toml declares it: loaded first, whether or not regbench is installed.
BUILTIN = EntryPoint(name="regbench", value="backends.builtin:TRAINERS", group=GROUP)


@dataclass(frozen=True)
class Catalogue:
    specs: dict[str, TrainerSpec]  # by trainer id, in the order found: regbench's own first
    sources: dict[str, Source]  # by trainer id
    broken: tuple[Broken, ...]


def _specs_of(obj: object) -> tuple[TrainerSpec, ...] | None:
    if isinstance(obj, TrainerSpec):
        return (obj,)
    if isinstance(obj, (tuple, list)) and obj and all(isinstance(s, TrainerSpec) for s in obj):
        return tuple(obj)
    return None


def _unique_role(role: str, spec: TrainerSpec) -> tuple[str, ...]:
    """What a role is unique over: the baseline per backend and device, every other role per device."""
    return (role, spec.backend, spec.device) if role == BASELINE else (role, spec.device)


@functools.cache
def catalogue() -> Catalogue:
    """Every trainer found, with where it came from, and every refused entry point or spec."""
    specs: dict[str, TrainerSpec] = {}
    sources: dict[str, Source] = {}
    held: dict[tuple[str, ...], str] = {}  # a unique role's key: the trainer holding it
    broken: list[Broken] = []
    for ep, source in installed(GROUP, [BUILTIN]):
        try:
            with plugin_code():
                found = _specs_of(ep.load())
        except Exception as exc:  # whatever a plugin's import raises (sys.exit() too), the suite goes on
            broken.append(Broken(source, f"loading {ep.value} failed: {failure(exc)}"))
            continue
        if found is None:
            broken.append(Broken(source, f"{ep.value} is not a TrainerSpec or a tuple of them"))
            continue
        for spec in found:
            error = _refusal(spec, source, specs, sources, held)
            if error:
                broken.append(Broken(source, error))
                continue
            specs[spec.id] = spec
            sources[spec.id] = source
            held.update({_unique_role(role, spec): spec.id for role in spec.roles})
    return Catalogue(specs, sources, tuple(broken))


def _refusal(spec, source, specs, sources, held) -> str:
    faults = spec.faults()
    if faults:
        return f"spec {spec.id} refused: {'; '.join(faults)}"
    if spec.id in specs:
        owner = sources[spec.id]
        what = "a built-in trainer's id" if owner.builtin else f"already declared by {owner}"
        return f"{spec.id} refused: {what}"
    if REFERENCE in spec.roles and not source.builtin:
        return f"{spec.id} refused: the reference is regbench's own NumPy loop"
    for role in spec.roles:
        holder = held.get(_unique_role(role, spec))
        if holder is not None:
            return f"{spec.id} refused: role {role!r} is held by {holder}"
    return ""
