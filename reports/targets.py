"""The speed, overhead and memory targets, judged from saved runs: ``regbench targets [RUN]``.

Rules: every verdict is computed from one saved run, as ratios of medians
measured in that run (side by side, on one machine); trainers are chosen by
the roles, backends and devices their records name, never by id, and a
target's rows by the study, the problem and the size's role their records name
(``At``: the seed's default size is the tutorial's, its full one the large
problem), never by a size restated here (``tests/test_targets.py`` holds the roles
against the benchmarks'). A target whose trainers or sizes are
missing from the run (a quick run, a selection, a study left out) is "not
measured": never counted met or not met, and listed (``not_measured``) as what
a deeper run would judge. A target with no bound is shown, not judged. A target
restated at a limit of JAX or XLA:CPU that the evidence names (issue 35) is
marked so, its former bound and the evidence named (``RESTATED``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from records.model import SEED_PROBLEM
from records.roles import BASELINE, CPU_LIMIT, NATIVE_LOOP, NATIVE_ROLES
from reports.load import Runs


@dataclass(frozen=True)
class At:
    """Where a target's rows are: the study (``kind``), the problem (its label) and the role of its size (``size``:
    records.model.FitRecord.size, what the problem's module declares it to be), as the records name them."""

    kind: str
    problem: str
    size: str

    def of(self, rows: pd.DataFrame) -> pd.Series:
        """Which of ``rows`` are here."""
        return (rows["kind"] == self.kind) & (rows["problem"] == self.problem) & (rows["size"] == self.size)


#: The sizes the targets are set at: the tutorial's problem (the seed's default size), the large problem (its full
#: size, which --full and --sweep add).
TUTORIAL, LARGE = At("fit", SEED_PROBLEM, "default"), At("fit", SEED_PROBLEM, "full")
#: What fit() may add over the bare training loop (building the result), as a fraction of the loop.
OVERHEAD_BOUND = 0.05
#: What a whole warm fit() in a user's fresh process may add over the loop's timed rounds, for the references that
#: the headline ratios divide by (the native loop, the CPU limit): their figures must be what their loops cost.
FIT_OVERHEAD_BOUND = 0.10
#: Peak memory a fit may add, as a multiple of its data (x and y in the working dtype).
MEMORY_BOUND = 4.0
#: The frameworks whose goals the suite's issues set (the bounds below). Any other backend of a run, a
#: plugin's, gets the same ratios shown, not judged (``targets_of``): no goal was ever agreed for it.
FRAMEWORKS = ("numpy", "torch", "jax")
FASTEST = "per_epoch_s"  # what "fastest" means unless a target says otherwise


@dataclass(frozen=True)
class Target:
    """The fastest one-process CPU trainer of ``backend`` (its baseline excluded) against a trainer of role ``against``.

    ``at``: its rows (TUTORIAL or LARGE). ``speedup``: the value is against/fastest and must be ≥ bound; otherwise
    fastest/against, ≤ bound.
    ``column`` is what is compared: at the tutorial's size whole fits, at the large size time per epoch, or
    ``fresh_fit_s``, a warm ``fit()`` in a fresh process that changed no setting (bench.cold_start). The
    fastest trainer is the one with the least ``rank_by`` (default: ``column``). Without ``against`` the
    value is the fastest trainer's own ``column``, in seconds.
    """

    what: str
    at: At
    backend: str
    against: str | None
    speedup: bool
    bound: float | None
    column: str = "per_epoch_s"
    rank_by: str = ""


TARGETS = (
    Target("NumPy: speed-up over its tutorial loop", TUTORIAL, "numpy", BASELINE, True, 3),
    Target("torch CPU: speed-up over its eager loop", TUTORIAL, "torch", BASELINE, True, 5),
    Target("torch CPU: time / native loop", TUTORIAL, "torch", NATIVE_LOOP, False, 20),
    Target("torch CPU: cold start, empty caches", TUTORIAL, "torch", None, False, 30, "cold_start_s", FASTEST),
    Target("torch CPU: warm start, caches filled", TUTORIAL, "torch", None, False, 8, "warm_start_s", FASTEST),
    Target("JAX: time / native loop", TUTORIAL, "jax", NATIVE_LOOP, False, 6),
    Target("JAX: fit() in a fresh process / native loop's", TUTORIAL, "jax", NATIVE_LOOP, False, 5, "fresh_fit_s"),
    Target("JAX: time / CPU limit", TUTORIAL, "jax", CPU_LIMIT, False, None),
    *(Target(f"{b}: time per epoch / native loop", LARGE, b, NATIVE_LOOP, False, 3) for b in FRAMEWORKS),
    *(Target(f"{b}: time per epoch / CPU limit", LARGE, b, CPU_LIMIT, False, None) for b in FRAMEWORKS),
)

COLUMNS = ["machine", "run", "dtype", "n", "target", "trainer", "against", "measured", "required", "met"]


@dataclass(frozen=True)
class Restated:
    """A target set again at what an upstream limit lets the framework reach (issue 35): its bound before, why."""

    was: str
    why: str


#: Where the evidence of every restated target is: its commands, numbers and upstream threads.
RESTATED_EVIDENCE = "docs/measuring.md#restated-targets"
#: The targets restated at a limit of JAX or XLA:CPU that the evidence names, by name; every other target holds.
RESTATED = {
    "JAX: fit() in a fresh process / native loop's": Restated(
        "≤ 4×",
        "JAX's asynchronous CPU dispatch: the Python around the program runs slower while XLA's thread runs it "
        "(openxla/xla#18608); with dispatch synchronous the same fit() meets ≤ 4×",
    ),
    "jax: time per epoch / CPU limit's": Restated(
        "≤ 3×",
        "XLA:CPU writes the residual and reads it back in three unfused YNNPACK reductions, 3.5× the CPU limit's "
        "bytes an epoch, and its reductions fall below one thread's speed on a busy machine "
        "(jax-ml/jax#37465, openxla/xla#46351)",
    ),
}


def restated_mark(what: str) -> str:
    """What a restated target's ``required`` cell adds to its bound: that it was restated."""
    return " (restated)" if what in RESTATED else ""


def restated_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """One line per restated target that ``tables`` hold: its bound before, why, and where the evidence is."""
    held = {what for t in tables.values() if "target" in t for what in t["target"]}
    return [f"restated: {what}: {RESTATED[what].was} before; {RESTATED[what].why} ({RESTATED_EVIDENCE})"
            for what in RESTATED if what in held]  # fmt: skip


def targets_of(rows: pd.DataFrame) -> tuple[Target, ...]:
    """TARGETS, and for every other backend of ``rows`` with a trainer that is neither a baseline nor native code,
    its ratios to the native loop (whole fits at the tutorial's size, per epoch at the large one), shown."""
    others = [b for b in dict.fromkeys(rows["backend"]) if b not in FRAMEWORKS and _fastest(rows, b) is not None]
    shown = ((": time / native loop", TUTORIAL), (": time per epoch / native loop", LARGE))
    return (*TARGETS, *(Target(b + what, at, b, NATIVE_LOOP, False, None) for b in others for what, at in shown))


def _cpu_rows(runs: Runs) -> pd.DataFrame:
    df = runs.table
    ok = (df["device"] == "cpu") & ~df["diverged"].astype(bool)
    return df[(TUTORIAL.of(df) | LARGE.of(df)) & ok]


def _size(rows: pd.DataFrame) -> int | str:
    """The size (n) of a target's rows, as their records say it; "" where the run has none (not measured)."""
    return int(rows["n"].iloc[0]) if not rows.empty else ""


def _has_role(rows: pd.DataFrame, *roles: str) -> pd.Series:
    """Whether each row's record names one of ``roles`` among its roles (a tuple, reports.load)."""
    named = [set(found) if isinstance(found, (tuple, list)) else set() for found in rows["roles"]]
    return pd.Series([not held.isdisjoint(roles) for held in named], index=rows.index, dtype=bool)


def _fastest(rows: pd.DataFrame, backend: str, by: str = FASTEST, but=(BASELINE, *NATIVE_ROLES)) -> pd.Series | None:
    """The fastest one-process trainer of ``backend`` other than those of roles ``but``: its baseline and native code
    (data-parallel ones use more cores; a native loop is what the others are held against)."""
    single = ~rows["distributed"].astype(bool)
    candidates = rows[(rows["backend"] == backend) & ~_has_role(rows, *but) & single]
    candidates = candidates[candidates[by].notna()]
    return None if candidates.empty else candidates.loc[candidates[by].astype(float).idxmin()]


def _against(rows: pd.DataFrame, target: Target, fastest: pd.Series | None) -> pd.Series | None:
    if target.against is None:
        return fastest
    found = rows[_has_role(rows, target.against) & (rows["device"] == "cpu") & rows[target.column].notna()]
    if target.against == BASELINE:  # the baseline of the fastest trainer's own backend
        found = found[found["backend"] == (None if fastest is None else fastest["backend"])]
    return None if found.empty else found.iloc[0]


def _required(target: Target) -> str:
    unit = "×" if target.against else " s"
    if target.bound is None:
        return ""
    return f"{'≥' if target.speedup else '≤'} {target.bound:g}{unit}" + restated_mark(target.what)


def speed(runs: Runs) -> pd.DataFrame:
    """Every speed target of every run and dtype, with the trainers compared and the verdict."""
    out = []
    for (machine, run, dtype), group in _cpu_rows(runs).groupby(["machine", "run", "dtype"]):
        for target in targets_of(group):
            rows = group[target.at.of(group)]
            fastest = _fastest(rows, target.backend, target.rank_by or target.column)
            against = _against(rows, target, fastest)
            if fastest is not None and pd.isna(fastest[target.column]):
                fastest = None
            row = {"machine": machine, "run": run, "dtype": dtype, "n": _size(rows), "target": target.what,
                   "required": _required(target)}  # fmt: skip
            if fastest is None or against is None:
                out.append({**row, "trainer": "", "against": "", "measured": np.nan, "met": None})
                continue
            fast, slow = float(fastest[target.column]), float(against[target.column])
            value = slow / fast if target.speedup else fast / slow
            if target.against is None:
                value = fast
            met = None
            if target.bound is not None:
                met = bool(value >= target.bound) if target.speedup else bool(value <= target.bound)
            out.append({**row, "trainer": fastest["trainer"], "against": against["trainer"] if target.against else "",
                        "measured": value,
                        "met": met})  # fmt: skip
    return pd.DataFrame(out, columns=COLUMNS)


def overhead(runs: Runs) -> pd.DataFrame:
    """What ``result()`` adds to the bare loop, per CPU trainer and size (the CPU limit shown, not judged).

    The limit's whole 100-point fit takes ~18 µs, so the ~1 µs any Python call
    needs to build a result is several percent of it, whatever the code.
    """
    df = _cpu_rows(runs).dropna(subset=["result_s"])
    share = df["result_s"] / df["median_s"]
    judged = ~_has_role(df, CPU_LIMIT)
    out = df[["machine", "run", "dtype", "n", "trainer", "median_s", "result_s"]].rename(columns={"median_s": "run_s"})
    met = np.where(judged, share < OVERHEAD_BOUND, None)
    out = out.assign(overhead=share, required=f"< {OVERHEAD_BOUND:.0%}", met=met)
    return out.sort_values(["machine", "run", "dtype", "n", "overhead"]).reset_index(drop=True)


def fit_overhead(runs: Runs) -> pd.DataFrame:
    """A warm ``fit()`` in a fresh process (``fresh_fit_s``: checks, conversion, the loop, the result) against
    the bare ``run()`` timed between those calls in that process (``fresh_run_s``), for the native loop and the
    CPU limit. A run saved before that was recorded is held against the benchmark's own rounds (``run_from``
    says which): another process, whose drift the ratio then carries."""
    df = _cpu_rows(runs).dropna(subset=["fresh_fit_s", "median_s"])
    df = df[_has_role(df, NATIVE_LOOP) | _has_role(df, CPU_LIMIT)]
    beside = df["fresh_run_s"].notna()
    out = df[["machine", "run", "dtype", "n", "trainer", "fresh_fit_s"]].rename(columns={"fresh_fit_s": "fit_s"})
    out = out.assign(run_s=df["fresh_run_s"].where(beside, df["median_s"]),
                     run_from=np.where(beside, "the same process", "the benchmark's rounds"))  # fmt: skip
    share = out["fit_s"] / out["run_s"] - 1
    out = out.assign(overhead=share, required=f"≤ {FIT_OVERHEAD_BOUND:.0%}", met=share <= FIT_OVERHEAD_BOUND)
    return out.sort_values(["machine", "run", "dtype", "n", "trainer"]).reset_index(drop=True)


def memory(runs: Runs) -> pd.DataFrame:
    """Peak memory a fit adds at the large size, as a multiple of its data.

    Judged on each framework's fastest CPU variant and on the native loop, the
    subjects of the speed targets; every other trainer is shown.
    """
    df = _cpu_rows(runs)
    df = df[LARGE.of(df) & df["memory_ratio"].notna()]
    out = []
    for (machine, run, dtype), group in df.groupby(["machine", "run", "dtype"]):
        judged = set(group[_has_role(group, NATIVE_LOOP)]["trainer"])
        judged |= {f["trainer"] for f in (_fastest(group, b) for b in FRAMEWORKS) if f is not None}
        for _, row in group.sort_values("memory_ratio").iterrows():
            met = bool(row["memory_ratio"] < MEMORY_BOUND) if row["trainer"] in judged else None
            out.append({"machine": machine, "run": run, "dtype": dtype, "n": row["n"], "trainer": row["trainer"],
                        "peak_bytes": row["peak_bytes"], "data_bytes": row["data_bytes"],
                        "memory_ratio": row["memory_ratio"], "required": f"< {MEMORY_BOUND:g}×",
                        "met": met})  # fmt: skip
    return pd.DataFrame(out)


#: The second workload's targets (issue 22), at its medium size (its full one, n = 10⁵), per epoch: each framework's
#: fastest against the CPU limit, and the CPU limit against reading X and y once, where they stream from memory (not
#: from cache).
LINEAR = At("fit", "linear(d=64)", "full")
LINEAR_PROBLEM = LINEAR.problem
LINEAR_BOUND, LINEAR_FLOOR_BOUND = 3.0, 1.5


def _bandwidth(runs: Runs, machine: str, run: str, dtype: str, problem: str, data_bytes: float) -> pd.Series | None:
    """The run's CPU floor in ``dtype`` for ``problem``'s epoch of ``data_bytes``: the exact one (that problem's read
    of as many bytes), else the seed's of the largest size, the best streaming read the run measured."""
    floor = runs.floor
    mine = floor[(floor["machine"] == machine) & (floor["run"] == run) & (floor["device"] == "cpu")
                 & (floor["dtype"] == dtype) & floor["bandwidth_Bps"].notna()]  # fmt: skip
    exact = mine[(mine["problem"] == problem) & (mine["data_bytes"] == data_bytes)]
    if not exact.empty:
        return exact.iloc[0]
    seed = mine[mine["problem"] == SEED_PROBLEM]
    return None if seed.empty else seed.loc[seed["n"].astype(float).idxmax()]


def _verdict(row: dict, what: str, bound: float, trainer: str = "", against: str = "", value: float = np.nan,
             judged: bool = True) -> dict:  # fmt: skip
    """A row of a target table: not measured (no trainer) and unjudged ones are shown, neither met nor not met."""
    met = bool(value <= bound) if judged and trainer else None
    return {**row, "target": what, "trainer": trainer, "against": against, "measured": value,
            "required": f"≤ {bound:g}×" + restated_mark(what), "met": met}  # fmt: skip


def problem_targets(runs: Runs) -> pd.DataFrame:
    """``linear`` at n = 10⁵, d = 64, per epoch: NumPy's, torch's and JAX's fastest each ≤ 3× the CPU limit, and the
    CPU limit ≤ 1.5× the time to read X and y once at the run's measured bandwidth (linear's own floor at that size
    where the run has it, else the seed's largest), judged where they exceed the last-level cache (``cache_bytes``
    of the machine record; shown otherwise: from cache, no floor is reached)."""
    df = runs.table
    rows = df[LINEAR.of(df) & (df["device"] == "cpu") & ~df["diverged"].astype(bool)]
    out = []
    for (machine, run, dtype), group in rows.groupby(["machine", "run", "dtype"]):
        row = {"machine": machine, "run": run, "dtype": dtype, "n": _size(group)}
        limit = None if (found := group[_has_role(group, CPU_LIMIT)]).empty else found.iloc[0]
        for backend in FRAMEWORKS:
            what = f"{LINEAR_PROBLEM}: {backend}'s time per epoch / CPU limit"
            fastest = _fastest(group, backend)
            if fastest is None or limit is None:
                out.append(_verdict(row, what, LINEAR_BOUND))
                continue
            value = float(fastest["per_epoch_s"]) / float(limit["per_epoch_s"])
            out.append(_verdict(row, what, LINEAR_BOUND, fastest["trainer"], limit["trainer"], value))
        what = f"{LINEAR_PROBLEM}: CPU limit's time per epoch / reading X and y once"
        floor = None if limit is None else _bandwidth(runs, machine, run, dtype, LINEAR_PROBLEM, limit["data_bytes"])
        if limit is None or floor is None:
            out.append(_verdict(row, what, LINEAR_FLOOR_BOUND))
            continue
        env = (runs.machines.get((machine, run)) or {}).get("regbench", {})
        cache = (env.get("cpu") or {}).get("cache_bytes")
        data, bandwidth = float(limit["data_bytes"]), float(floor["bandwidth_Bps"])
        against = (f"{data / 2**20:.3g} MiB at {bandwidth / 2**30:.3g} GiB/s (the floor of {floor['problem']} at "
                   f"n={floor['n']:g})")  # fmt: skip
        streams = cache is not None and data > cache
        if not streams:
            size = "unknown" if cache is None else f"{cache / 2**20:.3g} MiB"
            against += f"; shown, not judged: X and y fit the last-level cache ({size})"
        value = float(limit["per_epoch_s"]) / (data / bandwidth)
        out.append(_verdict(row, what, LINEAR_FLOOR_BOUND, limit["trainer"], against, value, judged=streams))
    return pd.DataFrame(out, columns=COLUMNS)


#: The MLP's target (issue 33): per epoch, each framework's fastest CPU trainer against its epoch's compute limit (its
#: record's ``flops`` over the machine's matrix-product rate in its dtype: reports.load's ``compute_s``), in float32
#: and float64, at its default size (its records' ``size``; a sweep adds larger ones, --full its full one).
MLP, MLP_BOUND, MLP_DTYPES = "mlp", 2.0, ("float32", "float64")


def compute_targets(runs: Runs) -> pd.DataFrame:
    """The MLP's time per epoch against its compute limit, for each framework's fastest CPU trainer (see MLP)."""
    df = runs.table
    rows = df[(df["kind"] == "fit") & (df["problem"].str.split("(").str[0] == MLP) & (df["size"] == "default")
              & (df["device"] == "cpu") & ~df["diverged"].astype(bool)]  # fmt: skip
    out = []
    for (machine, run), timed in rows.groupby(["machine", "run"]):
        at = timed[timed["problem"] == sorted(timed["problem"])[0]]
        for dtype in MLP_DTYPES:
            group = at[at["dtype"] == dtype]
            row = {"machine": machine, "run": run, "dtype": dtype, "n": int(at["n"].iloc[0])}
            for backend in FRAMEWORKS:
                what = f"{at['problem'].iloc[0]}: {backend}'s time per epoch / compute limit"
                fastest = _fastest(group, backend, but=NATIVE_ROLES)  # NumPy's MLP: its tutorial loop alone
                if fastest is None or pd.isna(fastest["compute_s"]):
                    out.append(_verdict(row, what, MLP_BOUND))
                    continue
                against = f"{fastest['flops']:.3g} FLOPs an epoch in {fastest['compute_s'] * 1e6:.3g} µs"
                value = float(fastest["per_epoch_s"]) / float(fastest["compute_s"])
                out.append(_verdict(row, what, MLP_BOUND, fastest["trainer"], against, value))
    return pd.DataFrame(out, columns=COLUMNS)


def judge(runs: Runs) -> dict[str, pd.DataFrame]:
    """The target tables of the loaded runs, and the marginal costs they judge."""
    costs = marginal_costs(runs)
    shown = costs.drop(columns=["roles", "distributed", "limit"])
    linear = problem_targets(runs)  # where the run has linear's medium size: not in a quick run
    mlp = compute_targets(runs)  # where the run timed the MLP: not in a quick run
    return {"speed targets": speed(runs), **({"linear targets": linear} if not linear.empty else {}),
            **({"mlp targets": mlp} if not mlp.empty else {}),
            "marginal targets": marginal(runs, costs), "marginal cost": shown,
            "overhead": overhead(runs), "fit overhead": fit_overhead(runs), "memory": memory(runs)}  # fmt: skip


def unmet(tables: dict[str, pd.DataFrame]) -> tuple[int, int]:
    """(judged, not met) over the tables' verdicts."""
    verdicts = pd.concat([t["met"] for t in tables.values() if "met" in t]).dropna().astype(bool)
    return len(verdicts), int((~verdicts).sum())


def unmeasured(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The target of each row with a bound that the run did not measure (its trainers or sizes missing)."""
    found = [t.loc[t["measured"].isna() & (t["required"] != "") & t["met"].isna(), "target"]
             for t in tables.values() if {"target", "measured", "required", "met"} <= set(t.columns)]  # fmt: skip
    return [target for column in found for target in column]


def not_measured(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The targets with a bound that the run did not measure, each once."""
    return list(dict.fromkeys(unmeasured(tables)))


#: At the marginal study's size: time per epoch against the CPU limit's, per backend (JAX's restated: RESTATED); and
#: the fixed cost of a fit, in epochs of it.
MARGINAL_BOUNDS = {"numpy": 3.5, "torch": 3.0, "jax": 5.0}
FIXED_BOUND_EPOCHS = 10.0
MARGINAL_COLUMNS = ["machine", "run", "dtype", "n", "trainer", "backend", "roles", "distributed", "limit",
                    "fit_few_s", "fit_many_s", "per_epoch_s", "fixed_s"]  # fmt: skip


def marginal_costs(runs: Runs) -> pd.DataFrame:
    """Each CPU trainer's cost per epoch and fixed cost, from whole ``fit()`` calls at two epoch counts.

    Per epoch: the difference of the two medians over the extra epochs (the marginal cost, which
    set-up does not blur); fixed: the fit at the fewer epochs less those epochs (conversion,
    set-up, result). The two counts are the fewest and the most the run measured.
    """
    df = runs.table
    df = df[(df["kind"] == "marginal") & (df["device"] == "cpu") & ~df["diverged"].astype(bool)]
    out = []
    for (machine, run, dtype, n, trainer), group in df.groupby(["machine", "run", "dtype", "n", "trainer"]):
        fits = group.set_index("epochs")["median_s"]
        few, many = int(fits.index.min()), int(fits.index.max())
        if few == many:
            continue
        per_epoch = (fits[many] - fits[few]) / (many - few)
        out.append({"machine": machine, "run": run, "dtype": dtype, "n": n, "trainer": trainer,
                    "backend": group["backend"].iloc[0], "roles": group["roles"].iloc[0],
                    "distributed": group["distributed"].iloc[0], "limit": bool(_has_role(group, CPU_LIMIT).iloc[0]),
                    "fit_few_s": fits[few], "fit_many_s": fits[many],
                    "per_epoch_s": per_epoch, "fixed_s": fits[few] - few * per_epoch})  # fmt: skip
    return pd.DataFrame(out, columns=MARGINAL_COLUMNS)


def marginal(runs: Runs, costs: pd.DataFrame) -> pd.DataFrame:
    """The large-problem targets of each framework's fastest trainer (least time per epoch) against the CPU limit.

    Judged wherever the speed targets are, and wherever the study ran: a run of the tutorial's problem without
    the study has them "not measured"; a run of other benchmarks only (a scaling study) has none.
    """
    out = []
    measured = pd.concat([_cpu_rows(runs), runs.table[runs.table["kind"] == "marginal"]])
    for (machine, run, dtype), _ in measured.groupby(["machine", "run", "dtype"]):
        group = costs[(costs["machine"] == machine) & (costs["run"] == run) & (costs["dtype"] == dtype)]
        n = _size(group)
        limit = group[group["limit"]]
        for backend in FRAMEWORKS:
            fastest = _fastest(group, backend)
            row = {"machine": machine, "run": run, "dtype": dtype, "n": n}
            checks = (
                (f"{backend}: time per epoch / CPU limit's", "per_epoch_s", MARGINAL_BOUNDS[backend]),
                (f"{backend}: fixed cost of fit(), in CPU-limit epochs", "fixed_s", FIXED_BOUND_EPOCHS),
            )
            for what, column, bound in checks:
                if fastest is None or limit.empty:
                    out.append(_verdict(row, what, bound))
                    continue
                value = fastest[column] / limit["per_epoch_s"].iloc[0]
                out.append(_verdict(row, what, bound, fastest["trainer"], limit["trainer"].iloc[0], value))
    return pd.DataFrame(out, columns=COLUMNS)
