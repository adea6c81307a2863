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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np

import problems
from backends._memory import available_memory
from problems import quadratic

DTYPES = ("float32", "float64")
_LARGEST = {dtype: float(np.finfo(dtype).max) for dtype in DTYPES}
#: Set by Problem's and TrainConfig's own validation, last: check_fit checks again only an instance without it
#: (a subclass that skipped the validation), so that a validated fit pays nothing twice (~10 µs of a 60 µs fit).
_VALIDATED = "_validated"

#: The tutorial's recipe: ``x = linspace(-1, 1, 100)``, ``np.random.seed(100)``: the seed's problem's default size,
#: as its module states it.
SEED_N, SEED = quadratic.DEFAULT_SIZES[0]["n"], quadratic.DEFAULT_SIZES[0]["seed"]


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


def _as_matrix(name: str, values: Any, dtype: type = np.float64, column: bool = False) -> np.ndarray:
    """A read-only (n, d) array of finite values in ``dtype``: (n, 1) for values of shape (n,), and with
    ``column`` (n, 1) always."""
    try:
        arr = _aligned_copy(values, dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.size == 0 or (column and arr.shape[1] != 1):
        want = "(n,) or (n, 1)" if column else "(n,) or (n, d) with n, d ≥ 1"
        raise ValueError(f"{name} must have shape {want}, got {np.shape(values)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    arr.flags.writeable = False
    return arr


def _as_params(values: Any, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Every parameter of ``shapes`` (name -> shape, the model's order) from the mapping ``values``: read-only
    float64 arrays of those shapes, of finite real numbers (not a bool or a string)."""
    if not isinstance(values, Mapping) or set(values) != set(shapes):
        got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
        raise ValueError(f"params0 must map the model's parameters {list(shapes)} to values, got {got}")
    out = {}
    for name, shape in shapes.items():
        value = values[name]
        if not shape and not _is_real(value):
            raise ValueError(f"params0[{name!r}] must be a real number, got {value!r}")
        try:
            arr = np.array(_real(value), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params0[{name!r}] must be numeric: {exc}") from None
        if arr.size != math.prod(shape):
            raise ValueError(f"params0[{name!r}] must have shape {shape}, got {arr.shape}")
        arr = arr.reshape(shape)
        if not np.isfinite(arr).all():
            raise ValueError(f"params0[{name!r}] contains NaN or inf")
        arr.flags.writeable = False
        out[name] = arr
    return out


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

    ``x`` is a read-only (n, d) array (values of shape (n,) are one feature, as the tutorial's (n, 1)), ``y``
    (n, 1). ``params0`` is every initial parameter by name, as the family declares them for d features
    (``problems.parameters``: the seed's ``w`` and ``b``, linear's ``theta`` and ``b``), in that order, each a
    read-only float64 array of its shape. Trainers cast them to their working dtype: x and y given as float32
    arrays (both) stay float32 (``dtype``), a problem made in that working dtype, which a float32 fit uses
    without converting; any other data is float64. ``sizes``: the problem's own parameters that the model's
    shapes depend on beyond d (mlp's hidden width ``h``; ``make_named_problem`` passes every parameter it made
    the data with).
    """

    x: np.ndarray
    y: np.ndarray
    params0: Mapping[str, Any]
    name: str = "custom"
    model: str = "quadratic"
    sizes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not problems.is_model(self.model):
            raise ValueError(f"model must be one of {problems.MODELS} or a plugin's family, got {self.model!r}")
        dtype = _data_dtype(self.x, self.y)
        x = _as_matrix("x", self.x, dtype)
        y = _as_matrix("y", self.y, dtype, column=True)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        shapes = problems.parameters(self.model, x.shape[1], **self.sizes)  # ValueError: data it cannot take
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "params0", _as_params(self.params0, shapes))
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

    @cached_property
    def largest(self) -> dict[str, float]:
        """The largest magnitude the model computes with, per field: its features (x², not x, for the seed's), y,
        and every initial parameter by name."""
        # Reductions only: no temporary array the size of the data (a fit's peak memory is measured). The
        # families' features are element-wise, so the extremes of x give the largest feature.
        extremes = np.array([[float(self.x.min())], [float(self.x.max())]])
        features = float(np.abs(problems.get(self.model).features(extremes)).max())
        y = max(-float(self.y.min()), float(self.y.max()))
        return {"features": features, "y": y, **{k: float(np.abs(v).max()) for k, v in self.params0.items()}}


#: Bytes a problem's maker holds at its peak, per byte of the data an epoch reads in float64 (its ``floor_bytes``):
#: the draws, the recipe's temporaries and Problem's copies (the seed's 34 and linear's 24 bytes per value by
#: tracemalloc at 10⁶ points, 2026-12, over 16 and 8 bytes of data).
MAKE_BYTES_PER_DATA_BYTE = 3


def make_problem(n: int, seed: int, noise: float = 0.2, dtype: str = "float64") -> Problem:
    """The tutorial's recipe at another size or seed, draw for draw (problem ``quadratic``).

    ``RandomState(seed)`` yields the same stream as ``np.random.seed(seed)``
    followed by ``np.random.rand``, without touching NumPy's global state.
    ``dtype="float32"`` makes the data in that working dtype (the float64 draws, rounded once), which a float32
    fit then uses without converting.
    """
    return make_named_problem("quadratic", n, seed, dtype=dtype, noise=noise)


def _checked_dtype(dtype: Any) -> str:
    """The name of a working dtype (DTYPES); ValueError naming them for anything else."""
    name = name_of_dtype(dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return name


def make_linear_problem(n: int, d: int, seed: int, noise: float = 0.2, dtype: str = "float64") -> Problem:
    """Problem ``linear`` (problems.linear): n points of d features uniform on [−1, 1], seeded; ``dtype`` as
    make_problem's."""
    return make_named_problem("linear", n, seed, dtype=dtype, d=d, noise=noise)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def make_named_problem(name: str, n: int, seed: int, dtype: str = "float64", **params: Any) -> Problem:
    """Problem ``name`` (problems.names(): regbench's or a plugin's) at size ``n`` with ``params`` (its defaults
    else), made by its module's ``make`` in ``dtype`` and fitted with its ``MODEL``. Sizes and the seed are
    checked, and a problem whose data would not fit in the memory available is refused, before anything is
    allocated."""
    module = problems.get(name)  # ValueError naming the known problems
    n = _positive_int("n", n)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    params = {**module.PARAMS, **params}
    for key, value in params.items():
        if isinstance(module.PARAMS.get(key), int):  # a size of the problem's own, as d
            params[key] = _positive_int(key, value)
        elif isinstance(module.PARAMS.get(key), float):
            params[key] = _finite_float(key, value)
    dtype = _checked_dtype(dtype)
    _check_memory(n, MAKE_BYTES_PER_DATA_BYTE * module.floor_bytes(n, 8, **params))
    x, y, params0 = module.make(n, int(seed), dtype, **params)
    own = "".join(f"{key}={value}," for key, value in params.items() if key != "noise")
    return Problem(x, y, params0, name=f"{name}(n={n},{own}seed={seed})", model=module.MODEL, sizes=params)


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
    if not isinstance(model, str) or not problems.is_model(model):
        raise TypeError(f"problem.model must be one of {problems.MODELS} or a plugin's family, got {model!r} {hint}")
    for name in ("x", "y"):
        a = getattr(problem, name, None)
        if not (isinstance(a, np.ndarray) and a.dtype.name in DTYPES and a.ndim == 2 and a.size
                and (a.shape[1] == 1 or name == "x")):  # fmt: skip
            got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"problem.{name} must be a float32 or float64 array of shape "
                            f"{'(n, d)' if name == 'x' else '(n, 1)'}, got {got} {hint}")  # fmt: skip
    if problem.x.dtype != problem.y.dtype:
        raise TypeError(f"problem.x and problem.y differ in dtype: {problem.x.dtype} and {problem.y.dtype} {hint}")
    if len(problem.x) != len(problem.y):
        raise TypeError(f"problem.x and problem.y differ in length: {len(problem.x)} and {len(problem.y)} {hint}")
    try:
        shapes = problems.parameters(model, problem.x.shape[1], **getattr(problem, "sizes", {}))
    except ValueError as exc:
        raise TypeError(f"{exc} {hint}") from None
    params0 = getattr(problem, "params0", None)
    if not isinstance(params0, Mapping) or list(params0) != list(shapes):
        raise TypeError(f"problem.params0 must map {list(shapes)} to values, got {params0!r} {hint}")
    for name, shape in shapes.items():
        value = params0[name]
        if not (isinstance(value, np.ndarray) and value.dtype == np.float64 and value.shape == shape
                and np.isfinite(value).all()):  # fmt: skip
            raise TypeError(f"problem.params0[{name!r}] must be a finite float64 array of shape {shape}, "
                            f"got {value!r} {hint}")  # fmt: skip
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


def flat(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Every parameter of ``params`` as one float64 vector, in the mapping's order (the model's)."""
    return np.concatenate([np.ravel(v) for v in params.values()]).astype(np.float64, copy=False)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of one fit.

    ``losses[i]`` is ``0.5·Σ(ŷ−y)²`` before update ``i``, as the tutorial
    computes it; ``final_loss`` is the loss at the returned parameters.
    ``params`` is every fitted parameter by name (the problem's ``params0``
    names, in that order), each a read-only float64 array: a copy of the
    trainer's host values (``names``, ``values``), made when first read, so
    that ``fit`` does not pay for it (a dict of arrays cost ~3 µs a fit, a fifth
    of the fastest 100-point fit's time). Losses are float64 copies of what the
    trainer computed in its own dtype. ``diverged`` is derived when first read.
    """

    names: tuple[str, ...]
    values: tuple[Any, ...]
    losses: np.ndarray
    final_loss: float

    @classmethod
    def of(cls, names: tuple[str, ...], values: tuple[Any, ...], losses: Any, final_loss: Any) -> FitResult:
        """Build a result from a trainer's host values: each parameter (a scalar or an array) in the order of
        ``names``, and a 1-D loss array. Kept lean: it runs inside every ``fit`` (under 1 µs)."""
        hist = np.asarray(losses, dtype=np.float64)  # run() hands over fresh buffers: no copy needed
        hist.setflags(write=False)
        return cls(names, values, hist, float(final_loss))

    @classmethod
    def from_arrays(cls, params: Mapping[str, Any], losses: Any, final_loss: Any) -> FitResult:
        """Build a result from each parameter by name (``of``'s, from a mapping)."""
        return cls.of(tuple(params), tuple(params.values()), losses, final_loss)

    @cached_property
    def params(self) -> dict[str, np.ndarray]:
        """Every fitted parameter by name: read-only float64 arrays, copies of the trainer's values."""
        out = {}
        for name, value in zip(self.names, self.values, strict=True):
            arr = np.array(value, dtype=np.float64)
            arr.setflags(write=False)
            out[name] = arr
        return out

    @cached_property
    def diverged(self) -> bool:
        """A non-finite value, or a final loss above the first (a Python bool: results serialise as JSON)."""
        finite = all(bool(np.isfinite(v).all()) for v in self.params.values()) and math.isfinite(self.final_loss)
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
    """For fits whose ``run()`` already returns host values ``(*params, losses, final_loss)``: every parameter,
    in the order of the fit's ``names`` (the problem's ``params0``: ``tuple(problem.params0)``)."""

    names: tuple[str, ...]

    def result(self, raw: Any) -> FitResult:
        *values, losses, final_loss = raw
        return FitResult.of(self.names, tuple(values), losses, final_loss)


@runtime_checkable
class Trainer(Protocol):
    """One way of running the tutorial's gradient descent."""

    id: str
    backend: str
    device: str
    variant: str

    def prepare(self, problem: Problem, config: TrainConfig) -> PreparedFit: ...

    def fit(self, problem: Problem, config: TrainConfig) -> FitResult: ...
