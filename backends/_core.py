"""Problem, configuration and result types shared by every backend.

Rules: nothing here imports a framework; every value is validated when it is
constructed (a bad field raises ``ValueError`` naming it and the value, in one
line): a number is a real number (int, float or their NumPy kinds; not a bool,
a string or None), whatever the field, and nothing is allocated before the
memory for it is known to be there. Configs and results are frozen and their
arrays read-only, so a comparison cannot mutate its inputs. ``check_fit`` is
what every trainer asks before it converts or allocates anything: the
arguments' types and invariants (a subclass that skipped the validation is
refused, not passed on to a framework), values that fit the working dtype, and
memory for the loss history. (Over 300 lines: the types every backend shares,
with their validation, in one place.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np

import problems

DTYPES = ("float32", "float64")
_LARGEST = {dtype: float(np.finfo(dtype).max) for dtype in DTYPES}
#: Set by Problem's and TrainConfig's own validation, last: check_fit checks again only an instance without it
#: (a subclass that skipped the validation), so that a validated fit pays nothing twice (~10 µs of a 60 µs fit).
_VALIDATED = "_validated"

#: The tutorial's recipe: ``x = linspace(-1, 1, 100)``, ``np.random.seed(100)``.
SEED_N = 100
SEED = 100


def _data_dtype(*values: Any) -> type:
    """float32 where every array is already float32 (a problem made in that working dtype: kept, so that a float32
    fit converts nothing); float64 for anything else."""
    f32 = all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in values)
    return np.float32 if f32 else np.float64


#: Bytes a problem's x and y are aligned to (NumPy's own allocations are aligned to 16): XLA's CPU client uses a
#: host array that is aligned to 64 in place, and copies any other on every call; a JAX fit of 10⁷ float32 points
#: copied its 80 MB of data, ~30 ms, before each run (2026-12-02).
ALIGNMENT = 64


def _real(values: Any) -> Any:
    """``values``, refused (TypeError) where NumPy would drop an imaginary part or read bools as 0 and 1."""
    dtype = np.asarray(values).dtype
    if dtype.kind in "bc":
        raise TypeError(f"got {dtype} values, not real numbers")
    return values


def _aligned_copy(values: Any, dtype: type) -> np.ndarray:
    """A new array of ``values`` in ``dtype`` whose data start at a multiple of ALIGNMENT."""
    src = np.asarray(_real(values), dtype=dtype)
    buf = np.empty(src.nbytes + ALIGNMENT, np.uint8)
    start = -buf.ctypes.data % ALIGNMENT
    out = buf[start : start + src.nbytes].view(dtype).reshape(src.shape)
    out[...] = src
    return out


def _as_column(name: str, values: Any, dtype: type = np.float64) -> np.ndarray:
    try:
        arr = _aligned_copy(values, dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    arr = arr.reshape(-1, 1)
    arr.flags.writeable = False
    return arr


def _as_matrix(name: str, values: Any, dtype: type = np.float64) -> np.ndarray:
    """A read-only (n, d) array of finite values in ``dtype``."""
    try:
        arr = _aligned_copy(values, dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must have shape (n, d) with n, d ≥ 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    arr.flags.writeable = False
    return arr


def _finite_vector(name: str, values: Any, d: int) -> np.ndarray:
    try:
        arr = np.array(_real(values), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.shape != (d,):
        raise ValueError(f"{name} must have {d} values, one per feature, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    arr.flags.writeable = False
    return arr


def _is_real(value: Any) -> bool:
    """An int, a float or a NumPy integer or float (a one-element array of one too); never a bool or a string."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item() if value.dtype.kind in "iuf" else None
    # bool is an int to Python, but lr=True is a mistake, as epochs=True is.
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _finite_float(name: str, value: Any) -> float:
    if not _is_real(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(np.asarray(value, dtype=np.float64).reshape(()))
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


@dataclass(frozen=True, eq=False)
class Problem:
    """Data and initial parameters of one fit of the model family ``model`` (problems.MODELS).

    ``quadratic`` (the seed's ``y = w·x² + b``): ``x`` and ``y`` are read-only float64 arrays of shape
    (n, 1), as in the tutorial, and ``w0`` a float. ``linear``: ``x`` is (n, d), ``y`` (n, 1), and ``w0``
    a read-only float64 vector of d values. ``b0`` is a float. Trainers cast them to their working dtype:
    x and y given as float32 arrays (both) stay float32 (``dtype``), a problem made in that working dtype,
    which a float32 fit uses without converting; any other data is float64.
    ``params0`` is every initial parameter as one vector (``[w0…, b0]``).
    """

    x: np.ndarray
    y: np.ndarray
    w0: float | np.ndarray
    b0: float
    name: str = "custom"
    model: str = "quadratic"

    def __post_init__(self) -> None:
        if self.model not in problems.MODELS:
            raise ValueError(f"model must be one of {problems.MODELS}, got {self.model!r}")
        dtype = _data_dtype(self.x, self.y)
        x = _as_column("x", self.x, dtype) if self.model == "quadratic" else _as_matrix("x", self.x, dtype)
        y = _as_column("y", self.y, dtype)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        w0 = _finite_float("w0", self.w0) if self.model == "quadratic" else _finite_vector("w0", self.w0, x.shape[1])
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "w0", w0)
        object.__setattr__(self, "b0", _finite_float("b0", self.b0))
        object.__setattr__(self, _VALIDATED, True)

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def dtype(self) -> str:
        """The data's dtype: float64, or float32 for a problem made in that working dtype."""
        return self.x.dtype.name

    @property
    def d(self) -> int:
        """Features: 1 for the seed's model."""
        return self.x.shape[1]

    @property
    def params0(self) -> np.ndarray:
        """The initial parameters as one float64 vector: ``[w0…, b0]``."""
        return np.append(self.w0, self.b0)

    @cached_property
    def largest(self) -> dict[str, float]:
        """The largest magnitude the model computes with, per field: x² (not x) for the seed's, y, w0, b0."""
        # Reductions only: no temporary array the size of the data (a fit's peak memory is measured).
        x, y = (max(-float(a.min()), float(a.max())) for a in (self.x, self.y))
        if self.model == "quadratic":
            return {"x²": x * x, "y": y, "w0": abs(self.w0), "b0": abs(self.b0)}
        return {"x": x, "y": y, "w0": float(np.abs(self.w0).max()), "b0": abs(self.b0)}


#: Bytes make_problem holds at its peak per point: x, y, the recipe's temporaries and Problem's copies
#: (34 by tracemalloc at 10⁶ points, 2026-12).
MAKE_PROBLEM_BYTES_PER_POINT = 40


def make_problem(n: int, seed: int, noise: float = 0.2, dtype: str = "float64") -> Problem:
    """The tutorial's recipe at another size or seed, draw for draw.

    ``RandomState(seed)`` yields the same stream as ``np.random.seed(seed)``
    followed by ``np.random.rand``, without touching NumPy's global state.
    A size whose arrays would not fit in the memory available is refused before anything is allocated.
    ``dtype="float32"`` makes the data in that working dtype (the float64 draws, rounded once), which a float32
    fit then uses without converting.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    noise = _finite_float("noise", noise)
    dtype = _checked_dtype(dtype)
    _check_memory(n, MAKE_PROBLEM_BYTES_PER_POINT * int(n))
    x, y, w, b = problems.get("quadratic").make(int(n), int(seed), dtype, noise=noise)  # the tutorial's recipe
    return Problem(x, y, w, b, name=f"n={n},seed={seed}")


def _checked_dtype(dtype: Any) -> str:
    """The name of a working dtype (DTYPES); ValueError naming them for anything else."""
    name = name_of_dtype(dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return name


#: Bytes make_linear_problem holds at its peak per value of X: the draw and Problem's copy.
MAKE_LINEAR_BYTES_PER_VALUE = 24


def make_linear_problem(n: int, d: int, seed: int, noise: float = 0.2, dtype: str = "float64") -> Problem:
    """Problem ``linear`` (problems.linear): n points of d features uniform on [−1, 1], seeded; ``dtype`` as
    make_problem's."""
    for name, value in (("n", n), ("d", d)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    noise = _finite_float("noise", noise)
    dtype = _checked_dtype(dtype)
    _check_memory(n, MAKE_LINEAR_BYTES_PER_VALUE * int(n) * (int(d) + 1))
    x, y, w, b = problems.get("linear").make(int(n), int(seed), dtype, d=int(d), noise=noise)
    return Problem(x, y, w, b, name=f"n={n},d={d},seed={seed}", model="linear")


def make_named_problem(name: str, n: int, seed: int, dtype: str = "float64", **params: Any) -> Problem:
    """Problem ``name`` (problems.names(): regbench's or a plugin's) at size ``n`` with ``params`` (its defaults
    else), made by its module's ``make`` in ``dtype`` and fitted with its ``MODEL``."""
    if name == "quadratic":
        return make_problem(n, seed, dtype=dtype, **params)
    if name == "linear":
        return make_linear_problem(n, seed=seed, dtype=dtype, **{**problems.get("linear").PARAMS, **params})
    module = problems.get(name)  # ValueError naming the known problems
    x, y, w0, b0 = module.make(n, seed, _checked_dtype(dtype), **{**module.PARAMS, **params})
    return Problem(x, y, w0, b0, name=f"{name}(n={n},seed={seed})", model=module.MODEL)


def _check_memory(n: int, need: int) -> None:
    if need >= HISTORY_CHECKED_FROM and (free := available_memory()) is not None and need > free:
        raise ValueError(f"n={n}: the problem needs {need / 2**30:.3g} GiB, more than the "
                         f"{free / 2**30:.3g} GiB of memory available")  # fmt: skip


def seed_problem(dtype: str = "float64") -> Problem:
    """The tutorial's 100 points and initial ``w, b`` (in ``dtype``: see make_problem)."""
    return replace(make_problem(SEED_N, SEED, dtype=dtype), name="tutorial")


def name_of_dtype(dtype: Any) -> str | None:
    """NumPy's name of a dtype given as a name, a dtype or a NumPy scalar type; None for anything else.

    Not ``np.dtype(dtype)`` alone: ``np.dtype(None)`` is float64, so dtype=None would pass unnoticed.
    """
    if isinstance(dtype, (str, np.dtype)) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        try:
            return np.dtype(dtype).name
        except TypeError:
            return None
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one fit; the defaults are the tutorial's.

    ``workers`` is the number of processes of a data-parallel trainer; every
    other trainer runs in one process and refuses any other count.
    """

    epochs: int = 800
    lr: float = 1e-3
    dtype: str = "float64"
    workers: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)):
            raise ValueError(f"epochs must be an integer, got {self.epochs!r}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        object.__setattr__(self, "epochs", int(self.epochs))
        lr = _finite_float("lr", self.lr)
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "dtype", _checked_dtype(self.dtype))
        if isinstance(self.workers, bool) or not isinstance(self.workers, (int, np.integer)) or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        object.__setattr__(self, "workers", int(self.workers))
        object.__setattr__(self, _VALIDATED, True)


#: Below this many bytes of loss history no memory is checked: reading the system's figure costs more than it saves.
HISTORY_CHECKED_FROM = 2**26


def proc_kib(path: str, field: str) -> int:
    """A ``field: N kB`` line of a Linux /proc file (``/proc/meminfo``, ``/proc/self/status``), in KiB.

    OSError where the file cannot be read or has no such field.
    """
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in {path}")


def _memory(field: str, pages: str) -> int | None:
    """Bytes of a /proc/meminfo field, else of ``os.sysconf`` pages; None if unknown."""
    try:
        return proc_kib("/proc/meminfo", field) * 1024
    except OSError:
        pass
    try:
        return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else free pages); None if unknown."""
    return _memory("MemAvailable", "SC_AVPHYS_PAGES")


def total_memory() -> int | None:
    """Bytes of the machine's RAM (Linux's MemTotal, else its physical pages); None if unknown."""
    return _memory("MemTotal", "SC_PHYS_PAGES")


def check_fit(problem: Any, config: Any) -> None:
    """Refuse, before anything is converted or allocated, a fit that cannot work.

    Raises TypeError for arguments of the wrong type, ValueError for values beyond the working dtype's range
    (they would overflow when converted: frameworks warn, fail or return inf) and for a loss history that
    would not fit in memory (a fit holds it at least twice: the framework's array and the float64 copy).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a backends.Problem, got {type(problem).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a backends.TrainConfig, got {type(config).__name__}")
    if not (problem.__dict__.get(_VALIDATED) and config.__dict__.get(_VALIDATED)):
        _check_invariants(problem, config)
    limit = _LARGEST[config.dtype]
    largest = problem.largest
    # One test for the usual case (max() can pass over a NaN, a sum cannot); the loop says which value failed.
    if not (max(largest.values()) <= limit and config.lr <= limit and math.isfinite(sum(largest.values()))):
        for name, value in {**largest, "lr": config.lr}.items():
            if not math.isfinite(value):  # NaN in the data of a problem that skipped validation
                raise ValueError(f"problem's {name} is not finite: {value}")
            if value > limit:
                raise ValueError(f"{name} reaches {value:.3g}, beyond {config.dtype}'s largest value {limit:.3g}")
    history = 2 * 8 * config.epochs
    if history >= HISTORY_CHECKED_FROM:
        free = available_memory()
        if free is not None and history > free:
            raise ValueError(f"epochs={config.epochs}: the loss history needs {history / 2**30:.3g} GiB, more than "
                             f"the {free / 2**30:.3g} GiB of memory available")  # fmt: skip


def _check_invariants(problem: Problem, config: TrainConfig) -> None:
    """What construction guarantees, checked again (cheaply: no pass over the data) for subclasses that skip it."""
    hint = f"(a {type(problem).__name__} that skipped Problem.__post_init__?)"
    model = getattr(problem, "model", None)
    if model not in problems.MODELS:
        raise TypeError(f"problem.model must be one of {problems.MODELS}, got {model!r} {hint}")
    for name in ("x", "y"):
        a = getattr(problem, name, None)
        column = name == "y" or model == "quadratic"
        if not (isinstance(a, np.ndarray) and a.dtype.name in DTYPES and a.ndim == 2 and a.size
                and (a.shape[1] == 1 or not column)):  # fmt: skip
            got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"problem.{name} must be a float32 or float64 array of shape "
                            f"{'(n, 1)' if column else '(n, d)'}, got {got} {hint}")  # fmt: skip
    if problem.x.dtype != problem.y.dtype:
        raise TypeError(f"problem.x and problem.y differ in dtype: {problem.x.dtype} and {problem.y.dtype} {hint}")
    if len(problem.x) != len(problem.y):
        raise TypeError(f"problem.x and problem.y differ in length: {len(problem.x)} and {len(problem.y)} {hint}")
    names = ("w0", "b0") if model == "quadratic" else ("b0",)
    for name in names:
        value = getattr(problem, name, None)
        if type(value) is not float or not math.isfinite(value):
            raise TypeError(f"problem.{name} must be a finite float, got {value!r} {hint}")
    if model != "quadratic":
        w0 = getattr(problem, "w0", None)
        if not (isinstance(w0, np.ndarray) and w0.dtype == np.float64 and w0.shape == (problem.x.shape[1],)):
            raise TypeError(f"problem.w0 must be a float64 vector of {problem.x.shape[1]} values, got {w0!r} {hint}")
    fields = ("epochs", "lr", "dtype", "workers")
    values = tuple(getattr(config, f, None) for f in fields)
    checked = TrainConfig(*values)  # raises ValueError naming a bad field
    if tuple(map(type, values)) != tuple(type(getattr(checked, f)) for f in fields) or values != tuple(
        getattr(checked, f) for f in fields
    ):
        raise TypeError(f"config fields {dict(zip(fields, values, strict=True))} are not normalised "
                        f"(a {type(config).__name__} that skipped TrainConfig.__post_init__?)")  # fmt: skip


#: A fit whose final loss exceeds its first by more than this factor diverged
#: (slack for rounding when the start is already at the optimum).
DIVERGENCE_SLACK = 1e-3


@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of one fit.

    ``losses[i]`` is ``0.5·Σ(ŷ−y)²`` before update ``i``, as the tutorial
    computes it; ``final_loss`` is the loss at the returned ``w, b``. Values are
    float64 copies of what the trainer computed in its own dtype. ``diverged``
    is derived from them when first read, so that ``fit`` does not pay for it.
    ``w`` is a float for the seed's model and a read-only float64 vector (θ) for
    a model of d features; ``params`` is every parameter as one vector.
    """

    w: float | np.ndarray
    b: float
    losses: np.ndarray
    final_loss: float

    @classmethod
    def from_arrays(cls, w: Any, b: Any, losses: Any, final_loss: Any) -> FitResult:
        """Build a result from a trainer's host values (scalars and a 1-D loss array).

        Kept lean: it runs inside every ``fit`` (about 1 µs; the fastest 100-point fit takes 17 µs).
        """
        hist = np.asarray(losses, dtype=np.float64)  # run() hands over fresh buffers: no copy needed
        hist.setflags(write=False)
        if type(w) is not float:  # a Python float (the native loops') needs no look: np.ndim costs ~1.5 µs
            if np.ndim(w):  # a vector of parameters
                w = np.array(w, dtype=np.float64).reshape(-1)
                w.setflags(write=False)
            else:
                w = float(w)
        return cls(w, float(b), hist, float(final_loss))

    @property
    def params(self) -> np.ndarray:
        """Every fitted parameter as one float64 vector: ``[w…, b]``."""
        return np.append(self.w, self.b)

    @cached_property
    def diverged(self) -> bool:
        """A non-finite value, or a final loss above the first (a Python bool: results serialise as JSON)."""
        finite = bool(np.isfinite(self.w).all()) and math.isfinite(self.b) and math.isfinite(self.final_loss)
        if not (finite and bool(np.isfinite(self.losses).all())):
            return True
        return bool(self.final_loss > self.losses[0] * (1 + DIVERGENCE_SLACK))


@dataclass(frozen=True)
class Availability:
    """Whether a trainer can run here; ``reason`` says why not ("" when ok)."""

    ok: bool
    reason: str = ""

    def __repr__(self) -> str:
        return "Availability(ok=True)" if self.ok else f"Availability(ok=False, reason={self.reason!r})"


@runtime_checkable
class PreparedFit(Protocol):
    """A fit whose data is already converted and on the device.

    ``run()`` trains once from the initial parameters and returns only when the
    device has finished (it is what a benchmark times); its first call also pays
    any compilation. What it returns is fresh: no buffer is reused by a later
    run. ``result()`` turns what ``run()`` returned into a FitResult.
    """

    def run(self) -> Any: ...

    def result(self, raw: Any) -> FitResult: ...


class HostResult:
    """For fits whose ``run()`` already returns host values ``(w, b, losses, final_loss)``."""

    def result(self, raw: Any) -> FitResult:
        return FitResult.from_arrays(*raw)


@runtime_checkable
class Trainer(Protocol):
    """One way of running the tutorial's gradient descent."""

    id: str
    backend: str
    device: str
    variant: str

    def prepare(self, problem: Problem, config: TrainConfig) -> PreparedFit: ...

    def fit(self, problem: Problem, config: TrainConfig) -> FitResult: ...
