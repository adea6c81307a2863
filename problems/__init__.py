"""The problems (workloads) regbench trains: each defined once, in one module that imports no framework.

Rules: this is the lowest floor beside ``records``: it imports NumPy and records only. A problem module declares

- ``NAME``: the problem's name, as a saved record's ``problem.name`` carries it;
- ``PARAMS``: its parameters beyond the size ``n`` and the seed, with their defaults (``{"noise": 0.2}``);
- ``DEFAULT_SIZES`` and ``SWEEP_SIZES``: the parameters (``n`` included) of the default run's and of the
  sweep's problems; ``FULL_SIZES`` (optional, none if absent): the larger ones that ``regbench run --full`` adds.
  A size may name its data's ``seed`` too (0 where it does not): the seed's default size is the tutorial's
  ``{"n": 100, "seed": 100}``;
- ``parameters(d, **params) -> {name: shape}``: the model's parameters, by name, in the model's order, with
  their shapes for data of ``d`` features and the problem's own sizes (mlp's hidden width ``h``): the seed's
  ``w`` and ``b``, linear's ``theta`` (d,) and ``b``. Only a problem's own module names them: everything else
  goes by these names;
- ``make(n, seed, dtype="float64", **params) -> Data``: the data and the initial parameters, drawn from a
  seeded generator and converted once to the working dtype (float64: the draws as they are);
- ``features(x)``: the design matrix the model is linear in (``x²`` for the seed's model, ``X`` for linear);
- ``loss(xp, params, x, y)`` and ``gradient(xp, params, x, y) -> (loss, {name: ∂L/∂name})``: the model's loss
  of x (n, d) and y (n,) (``0.5·Σ(ŷ−y)²``; logistic's log-loss), and its hand-derived gradient (optional),
  written once
  against the Python array API standard: ``xp`` is the arrays' namespace (array-api-compat's NumPy, CuPy or
  torch, ``jax.numpy``), taken by the backend outside anything it traces or compiles; the arrays are all of one
  working dtype. A backend with autodiff differentiates ``loss``; NumPy's manual trainers run ``gradient``;
- ``optimum(x, y) -> ({name: value}, L*)``: the optimum, in float64 (closed-form least squares; None where a
  model has none);
- ``flops(n, **params)``: the FLOPs of one epoch, forward and backward (the compute limit's numerator);
- ``lr(n, **params)``: the learning rate the benchmarks use at a size, stable for every size;
- ``floor_bytes(n, itemsize, **params)``: the bytes one epoch must read at least (its data, once);
- ``curve(xp, params, x) -> ŷ`` (optional): the model's prediction at x (n, 1), where a report draws the fitted
  curve over the data (the seed's model, of one input): the run keeps each small fit's curve in its record
  (``FitRecord.curve``), and a problem without ``curve`` gets no such chart;
- ``MODEL``: the model family its data are fitted with: one of ``MODELS``, or the problem's own ``NAME`` for a
  module that declares a family of its own (its ``parameters``, ``loss`` and ``gradient`` are the family's, run
  by every trainer whose spec says ``written_once``: see ``is_model``). The built-ins
  (``"quadratic"``: x of shape (n, 1), ``ŷ = w·x² + b``; ``"linear"``: x of shape (n, d), ``ŷ = X·θ + b``).
  A trainer's spec lists the families it runs; a new problem of a known family is run by all of them.

The problems are regbench's own and every installed distribution's, declared in the entry-point group
``regbench.problems`` (the entry point's name is the problem's name, its value the module), found by the same
loader (records.sources). Listing their names imports no problem module; one that fails to import, lacks part
of the contract or takes a built-in's name is refused with one line (``status``), and the others stay.
"""

from __future__ import annotations

import functools
import importlib
import re
from importlib.metadata import EntryPoint
from types import ModuleType
from typing import NamedTuple

import numpy as np

from records.sources import Broken, Source, failure, installed, plugin_code

GROUP = "regbench.problems"
#: The built-in model families (a problem's ``MODEL``): each is the problem module of the same name. A plugin's
#: problem module may declare one more, its own (``MODEL == NAME``).
MODELS = ("quadratic", "linear", "mlp", "logistic")
#: regbench's own problems, as pyproject.toml declares them (each family's own): found first, whether or not
#: regbench is installed.
BUILTIN = tuple(EntryPoint(name, f"problems.{name}", GROUP) for name in MODELS)
#: What every problem module defines (``tests/test_linear.py`` holds each module to it).
#: (``gradient`` is optional: a family without one is run by the autodiff trainers alone.)
#: (``curve`` is optional: a family without one draws no fitted curve.)
CONTRACT = ("NAME", "MODEL", "PARAMS", "DEFAULT_SIZES", "SWEEP_SIZES", "parameters", "make", "features", "loss",
            "optimum", "lr", "flops", "floor_bytes")  # fmt: skip
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class Data(NamedTuple):
    """A problem's data and initial parameters: ``x`` (n, 1) or (n, d), ``y`` (n, 1), and ``params0``, each
    parameter by name (``parameters(d)``'s names, in that order) with its initial value."""

    x: np.ndarray
    y: np.ndarray
    params0: dict[str, float | np.ndarray]


@functools.cache
def _found() -> tuple[dict[str, tuple[str, Source]], tuple[Broken, ...]]:
    """Every problem's module and source by name; the entry points refused."""
    found: dict[str, tuple[str, Source]] = {}
    broken = []
    for ep, source in installed(GROUP, BUILTIN):
        if not _NAME.fullmatch(ep.name):
            broken.append(Broken(source, f"problem name {ep.name!r} is not lower-case letters, digits and _"))
        elif ep.name in found:
            owner = found[ep.name][1]
            what = "a built-in problem's name" if owner.builtin else f"already declared by {owner}"
            broken.append(Broken(source, f"problem {ep.name!r} refused: {what}"))
        elif ":" in ep.value:
            broken.append(Broken(source, f"problem {ep.name!r}: {ep.value} names an object, not a module"))
        else:
            found[ep.name] = (ep.value, source)
    return found, tuple(broken)


def names() -> tuple[str, ...]:
    """Every known problem's name, the seed's first; imports no problem module."""
    return tuple(_found()[0])


def source(name: str) -> Source:
    return _found()[0][name][1]


def get(name: str) -> ModuleType:
    """The module of problem ``name``; ValueError naming the known ones for any other name, and for a module
    that fails to import or to keep the contract (one line, naming its distribution)."""
    found = _found()[0]
    if name not in found:
        raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(found)}")
    return _load(name)


@functools.cache
def _load(name: str) -> ModuleType:
    path, src = _found()[0][name]
    try:
        with plugin_code():
            module = importlib.import_module(path)
    except Exception as exc:  # a plugin's import error (sys.exit() too) is a line, not a crash
        raise ValueError(f"problem {name!r} from {src}: importing {path} failed: {failure(exc)}") from None
    missing = [attr for attr in CONTRACT if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"problem {name!r} from {src}: {path} lacks {', '.join(missing)}")
    faults = _faults(module)
    if faults:
        raise ValueError(f"problem {name!r} from {src}: {path}'s {'; '.join(faults)}")
    if name != module.NAME or module.MODEL not in (*MODELS, name):
        raise ValueError(f"problem {name!r} from {src}: its NAME is {module.NAME!r} and its MODEL {module.MODEL!r} "
                         f"(one of {', '.join(MODELS)}, or its own name for a family of its own)")  # fmt: skip
    return module


def is_model(name: str) -> bool:
    """Whether ``name`` is a model family: a built-in one (MODELS), or a usable problem module (a plugin's) that
    declares its own (``MODEL == NAME``)."""
    if name in MODELS:
        return True
    try:
        return name == get(name).MODEL
    except ValueError:
        return False


def parameters(model: str, d: int, /, **sizes) -> dict[str, tuple[int, ...]]:
    """The parameters of model family ``model`` for data of ``d`` features and the problem's own ``sizes``
    (mlp's ``h``; others are passed over): name -> shape, in the model's order."""
    return get(model).parameters(d, **{key: value for key, value in sizes.items() if key != "d"})


def full_sizes(module: ModuleType) -> tuple[dict, ...]:
    """The sizes ``--full`` adds for a problem module: its ``FULL_SIZES``, none where it declares none."""
    return tuple(getattr(module, "FULL_SIZES", ()))


#: What a size of a problem is to the runs (a record's ``size``): one of its DEFAULT_SIZES (the default run's),
#: FULL_SIZES (what --full adds) or another (the sweep's, a study's own).
SIZE_ROLES = ("default", "full", "sweep")


def size_role(module: ModuleType, n: int, seed: int = 0, **params) -> str:
    """The role of problem ``module`` at size ``n`` with ``params`` (its PARAMS's defaults else) and ``seed``:
    SIZE_ROLES (the seed's 100 points of seed 0, a sweep's, are no default size: the tutorial's are seed 100)."""
    chosen = {**module.PARAMS, **params, "n": n, "seed": seed}
    for role, sizes in (("default", module.DEFAULT_SIZES), ("full", full_sizes(module))):
        if any({"seed": 0, **module.PARAMS, **size} == chosen for size in sizes):
            return role
    return "sweep"


def _sizes_fault(module: ModuleType, attr: str) -> str:
    sizes = getattr(module, attr)
    good = isinstance(sizes, (tuple, list)) and all(
        isinstance(size, dict)
        and type(size.get("n")) is int
        and size["n"] >= 1
        and set(size) - {"n", "seed"} <= set(module.PARAMS)
        and (type(size.get("seed", 0)) is int and 0 <= size.get("seed", 0) < 2**32)
        for size in sizes
    )
    return "" if good else f"{attr} is {sizes!r:.80}, not a tuple of dicts of n ≥ 1, a seed and PARAMS's keys"


def _faults(module: ModuleType) -> list[str]:
    """What breaks the contract's types (a bad value is found here, where ``regbench list`` reports it, not
    while a run collects its benchmarks)."""
    if not isinstance(module.PARAMS, dict):
        return [f"PARAMS is {module.PARAMS!r:.80}, not a dict"]
    faults = [_sizes_fault(module, attr) for attr in ("DEFAULT_SIZES", "SWEEP_SIZES") + ("FULL_SIZES",) * hasattr(
        module, "FULL_SIZES")]  # fmt: skip
    faults += [f"{attr} is not callable" for attr in CONTRACT if attr.islower() and not callable(getattr(module, attr))]
    if hasattr(module, "curve") and not callable(module.curve):
        faults.append("curve is not callable")
    return [fault for fault in faults if fault]


def status() -> dict[str, str]:
    """Every problem's name with why it cannot be used ("" when it can); imports each problem's module."""
    out = {}
    for name in names():
        try:
            get(name)
            out[name] = ""
        except ValueError as exc:
            out[name] = str(exc)
    return out


def usable() -> tuple[str, ...]:
    """The problems whose module loads and keeps the contract."""
    return tuple(name for name, why in status().items() if not why)


def broken() -> tuple[Broken, ...]:
    """The entry points of ``regbench.problems`` that were refused, with why."""
    return _found()[1]


def forget() -> None:
    """Find the problems again (a test's installed or removed distribution)."""
    _found.cache_clear()
    _load.cache_clear()
