"""autograd trainers: gradients by HIPS autograd's reverse mode, on the CPU.

Rules: the shape of regbench's own backend modules (``VARIANTS``, ``unavailable``, ``prepare``), with the code
of each model family chosen through one table, ``PREPARE`` (whose keys are the specs' families: regbench reads
them from this source, backends.families). Its own loss function serves the seed's and linear's problems:
``0.5·Σ(ŷ−y)²`` of ``ŷ = F·w + b``, ``F`` the problem's features (``problems.get(model).features``): the seed's
``x²`` (n,) times a scalar ``w``, linear's ``X`` (n, d) times θ (d,). Every other model family (mlp, logistic, a
plugin's own, such as regbench-poisson's) is run from its module's one definition, ``loss(xp, params, x, y)``,
with ``xp`` autograd's own ``autograd.numpy`` (its boxes follow NumPy's API, not the array API standard's; the
family's module must use what both have), differentiated over its parameters by name (a dict).
``tutorial`` is the tutorial's loop with autograd in place of the hand-derived gradient: the loss is
computed, then ``autograd.grad`` of the loss function traces a second forward pass for the gradient (two
passes an epoch). ``fused`` takes the loss and the gradient from one traced pass (``autograd.value_and_grad``).
The data, the initial parameters and ``lr`` are cast once to the working dtype in ``prepare``; the loss's
constants are Python scalars, which NumPy 2 does not promote, and so, from autograd 1.9 on, are those of its
gradient of ``** 2``: a float32 fit's losses, gradients and parameters stay float32 throughout (the package's
tests hold them to it; README.md says what goes wrong before 1.9). Overflow is how divergence shows: ``run()``
silences NumPy's warnings with ``np.errstate`` for the fit alone; nothing process-wide changes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

import problems
from backends import FitResult, HostResult, Problem, TrainConfig

try:
    import autograd
    import autograd.numpy as anp
except ImportError as exc:  # regbench checks for autograd before importing this; a direct import says why here
    autograd = anp = None
    AUTOGRAD_MISSING = f"autograd is not installed (pip install 'autograd>=1.9'): {exc}"
else:
    AUTOGRAD_MISSING = ""

VARIANTS = {"cpu": ("tutorial", "fused")}


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no autograd variant {variant!r} on {device!r}"
    return AUTOGRAD_MISSING


def loss(w, b, features, y):
    """The tutorial's loss, statement for statement, on x² (n,) and a scalar w, or on X (n, d) and θ (d,)."""
    y_pred = (anp.dot(features, w) if features.ndim == 2 else features * w) + b
    loss = 0.5 * (y_pred - y) ** 2
    return anp.sum(loss)


@functools.cache
def derivatives():
    """``(gradient, loss_and_gradient)`` of ``loss`` in ``(w, b)``: ``autograd.grad`` and ``value_and_grad``."""
    return autograd.grad(loss, argnum=(0, 1)), autograd.value_and_grad(loss, argnum=(0, 1))


@dataclass
class _Fit(HostResult):
    """What both variants share; ``run()`` returns host values ``(w, b, losses, final_loss)``, which HostResult
    names by ``names``: the problem's parameters (its ``params0``), its weights then its intercept."""

    names: tuple[str, ...]
    features: np.ndarray  # x² (n,) or X (n, d), working dtype, read only
    y: np.ndarray  # (n,), working dtype
    w0: Any  # a scalar of the working dtype; θ0 (d,) for linear
    b0: np.generic
    lr: np.generic
    epochs: int


class _TutorialFit(_Fit):
    def run(self):
        features, y, lr = self.features, self.y, self.lr
        gradient = derivatives()[0]
        w, b = self.w0, self.b0  # never written: every update makes new values
        losses = np.empty(self.epochs)  # float64 holds every float32 loss exactly
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.epochs):
                losses[i] = loss(w, b, features, y)
                grad_w, grad_b = gradient(w, b, features, y)
                w, b = w - lr * grad_w, b - lr * grad_b
            final = loss(w, b, features, y)
        return w, b, losses, final


class _FusedFit(_Fit):
    def run(self):
        features, y, lr = self.features, self.y, self.lr
        loss_and_gradient = derivatives()[1]
        w, b = self.w0, self.b0
        losses = np.empty(self.epochs)
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.epochs):
                losses[i], (grad_w, grad_b) = loss_and_gradient(w, b, features, y)
                w, b = w - lr * grad_w, b - lr * grad_b
            final = loss(w, b, features, y)
        return w, b, losses, final


_FITS = {"tutorial": _TutorialFit, "fused": _FusedFit}


@dataclass
class _ModelFit:
    """Any other model family by its module's ``loss``: ``tutorial`` (the loss, then ``autograd.grad``: two passes
    an epoch) or ``fused`` (``autograd.value_and_grad``); ``run()`` returns ``(params, losses, final)``."""

    variant: str
    loss: Any  # the family's loss(xp, params, x, y)
    x: np.ndarray  # (n, d), working dtype
    y: np.ndarray  # (n,), working dtype
    params0: dict  # every parameter by name, working dtype
    lr: np.generic
    epochs: int

    def run(self):
        x, y, lr = self.x, self.y, self.lr

        def objective(params):
            return self.loss(anp, params, x, y)

        gradient, loss_and_gradient = autograd.grad(objective), autograd.value_and_grad(objective)
        params = dict(self.params0)  # never written: every update makes new values
        losses = np.empty(self.epochs)
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.epochs):
                if self.variant == "tutorial":
                    losses[i] = objective(params)
                    grads = gradient(params)
                else:
                    losses[i], grads = loss_and_gradient(params)
                params = {name: value - lr * grads[name] for name, value in params.items()}
            final = objective(params)
        return params, losses, final

    def result(self, raw) -> FitResult:
        params, losses, final = raw
        params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
        return FitResult.from_arrays(params, losses, float(final))


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    return PREPARE.get(problem.model, _prepare_model)(variant, problem, np.dtype(config.dtype), config)


def _prepare_features(variant: str, problem: Problem, dtype: np.dtype, config: TrainConfig):
    """The seed's and linear's problems: this module's loss of the problem's features."""
    # Cast first, then the features in the working dtype (a float32 fit's x² is the float32 x squared, as
    # regbench's NumPy trainers compute it). A float64 fit uses the Problem's read-only arrays as they are.
    features = problems.get(problem.model).features(np.ascontiguousarray(problem.x, dtype=dtype))
    weights0, b0 = problem.params0.values()  # the model's weights, then its intercept
    if weights0.ndim == 0:  # one feature (the seed's x²) and a scalar weight
        features, w0 = features.ravel(), dtype.type(weights0)
    else:
        w0 = weights0.astype(dtype)
    return _FITS[variant](
        names=tuple(problem.params0),
        features=features,
        y=problem.y.astype(dtype, copy=False).ravel(),
        w0=w0,
        b0=dtype.type(b0),
        lr=dtype.type(config.lr),
        epochs=config.epochs,
    )


def _prepare_model(variant: str, problem: Problem, dtype: np.dtype, config: TrainConfig):
    """Any other model family, from its module's loss (the data and every parameter cast once to ``dtype``)."""
    params0 = {name: np.asarray(value, dtype=dtype) for name, value in problem.params0.items()}
    return _ModelFit(variant=variant, loss=problems.get(problem.model).loss,
                     x=np.ascontiguousarray(problem.x, dtype=dtype), y=problem.y.astype(dtype, copy=False).ravel(),
                     params0=params0, lr=dtype.type(config.lr), epochs=config.epochs)  # fmt: skip


#: The code of each model family this module has of its own: a new family is a new entry. Any other family is
#: run from its module's loss (``_prepare_model``): the specs say ``written_once``.
PREPARE = {"quadratic": _prepare_features, "linear": _prepare_features}
