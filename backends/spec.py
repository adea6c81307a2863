"""What a trainer says about itself: ``TrainerSpec``, the one thing a plugin declares besides its module.

Rules: a spec is plain data and imports nothing; the defaults work for a CPU trainer of a pip-installable
framework, so a plugin states only what differs. Every field that bench/ or reports/ would otherwise look up
in a table keyed by framework name is here: how the framework is installed, how its GPU time is taken, its
colour in the charts. ``faults()`` lists what is malformed, for the loader (backends.discovery) to refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from problems import MODELS
from records.roles import ROLES

#: A part of a trainer's id (backend, method, variant, device): lower-case letters, digits and underscores,
#: since the id joins the parts with hyphens and pytest ids and file names carry it.
_PART = re.compile(r"[a-z][a-z0-9_]*")
#: The GPU runtimes bench.gpu times with events and bench.memory reads the allocator of; "": neither (the wall
#: clock of a ``run()`` that returns when the device is done; memory not measured off the CPU).
GPU_RUNTIMES = ("", "torch", "cupy", "numba")


@dataclass(frozen=True)
class TrainerSpec:
    backend: str  # the framework family it belongs to: "numpy", "torch", "jax", "numba", "autograd", ...
    method: str  # how gradients are obtained: "manual", "autograd", "grad", "native"
    variant: str  # execution style: "tutorial", "eager", "jit", "scan", ...
    device: str  # "cpu", "cuda", "gpu"
    module: str  # the backend module (unavailable, prepare, VARIANTS), imported on first probe or use
    roles: tuple[str, ...] = ()  # from records.roles: the built-ins' comparison anchors; a plugin's may be BASELINE
    compiles: bool = False  # its first call compiles (or captures) code: it has a cold start worth measuring
    distributed: bool = False  # runs on a group of TrainConfig.workers processes (data-parallel); others take 1
    twin: str = ""  # data-parallel: the variant (same backend, device) that runs the same steps in one process
    problems: tuple[str, ...] = ("quadratic",)  # the model families (problems.MODELS) it has code of its own for
    # It also runs every other family from its module's maths, written once against the array API (problems:
    # ``loss``, and ``gradient`` for a trainer without autodiff); without it, other families are refused.
    written_once: bool = False
    framework: str = ""  # the import name whose absence makes it unavailable, and its process ("": backend)
    install: str = ""  # what to run when the framework is missing ("": pip install FRAMEWORK)
    gpu_runtime: str = ""  # off the CPU, whose events time it and whose allocator measures it (GPU_RUNTIMES)
    color: str = ""  # a matplotlib colour for its backend in the charts ("": one picked from the backend's name)

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.method}-{self.variant}-{self.device}"

    @property
    def import_name(self) -> str:
        """The framework's import name: what must be installed, and whose process ``regbench run`` gives it."""
        return self.framework or self.backend

    @property
    def install_hint(self) -> str:
        return self.install or f"pip install {self.import_name}"

    def runs(self, model: str) -> bool:
        """Whether it runs model family ``model``: one it lists, or any other where it runs models written once."""
        return model in self.problems or self.written_once

    def faults(self) -> list[str]:
        """What is malformed in this spec, one phrase each; empty for a well-formed spec."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            want = {"roles": tuple, "problems": tuple, "compiles": bool, "distributed": bool,
                    "written_once": bool}.get(f.name, str)  # fmt: skip
            if not isinstance(value, want):
                out.append(f"{f.name} must be a {want.__name__}, got {value!r}")
        if out:
            return out
        for name in ("backend", "method", "variant", "device"):
            if not _PART.fullmatch(getattr(self, name)):
                out.append(f"{name} {getattr(self, name)!r} is not lower-case letters, digits and underscores")
        if not self.module:
            out.append("module is empty")
        out += [f"unknown role {role!r} (roles: {', '.join(ROLES)})" for role in self.roles if role not in ROLES]
        if not self.problems or not set(self.problems) <= set(MODELS):
            out.append(f"problems must name model families of {MODELS}, got {self.problems!r}")
        if self.twin and not self.distributed:
            out.append("only a distributed trainer has a twin")
        if self.gpu_runtime not in GPU_RUNTIMES:
            out.append(f"gpu_runtime must be one of {GPU_RUNTIMES}, got {self.gpu_runtime!r}")
        return out
