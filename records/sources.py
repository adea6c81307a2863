"""Where a trainer or a problem came from: the installed distribution behind an entry point.

Rules: standard library only (backends.discovery and problems both read entry points through it). regbench's
own entry points come first and are the ones given here, made by hand, so that a source checkout that was
never pip-installed finds its own, and an installed regbench's are not found twice. A record names its
trainer's source as ``"DISTRIBUTION VERSION"`` (records.model.FitRecord.source).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version

DISTRIBUTION = "regbench"


@dataclass(frozen=True)
class Source:
    """``regbench-autograd 0.1.0 (entry point autograd)``."""

    distribution: str
    version: str
    entry_point: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} (entry point {self.entry_point})"

    @property
    def builtin(self) -> bool:
        return self.distribution == DISTRIBUTION

    @property
    def release(self) -> str:
        """What a record keeps: ``regbench-autograd 0.1.0``."""
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class Broken:
    """An entry point (or what it declares) that was refused, and why, in one line."""

    source: Source
    error: str

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


def _own_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source checkout that was never installed
        return "(source)"


def source_of(ep: EntryPoint, builtin: bool = False) -> Source:
    if builtin:
        return Source(DISTRIBUTION, _own_version(), ep.name)
    dist = ep.dist
    return Source(dist.metadata["Name"] or "?", dist.version or "?", ep.name) if dist else Source("?", "?", ep.name)


def installed(group: str, builtin: Iterable[EntryPoint]) -> list[tuple[EntryPoint, Source]]:
    """regbench's own entry points of ``group`` first, then every other distribution's, by distribution and name."""
    own = [(ep, source_of(ep, builtin=True)) for ep in builtin]
    others = [(ep, source_of(ep)) for ep in entry_points(group=group)]
    others = [(ep, src) for ep, src in others if not src.builtin]
    return [*own, *sorted(others, key=lambda pair: (pair[1].distribution, pair[0].name))]
