"""The report leads with the answer: summary, contents, one list of skipped trainers (reports.summary, reports.render).

Made from the committed fixtures and read back as HTML (the stdlib's parser), the numbers recomputed from the
JSON files themselves, not from the code under test.
"""

from __future__ import annotations

import json
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from records.model import validate_run
from regbench.cli import main
from reports import summary, targets
from reports.load import load

DATA = Path(__file__).parent / "data"
FIXTURES = [DATA / "v1", DATA / "storage"]


class Page(HTMLParser):
    """Every id, every local link, and the text and tables under each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.text: dict[str, str] = defaultdict(str)  # id -> text inside it (for the few ids the test reads)
        self.open: list[str | None] = []
        self.section = ""  # the id of the last h2 seen: tables belong to it
        self.tables: dict[str, list[list[str]]] = defaultdict(list)  # section -> rows of its tables
        self.in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and (attrs.get("href") or "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "h2" or attrs.get("class") == "summary":  # a section's tables follow its heading
            self.section = attrs.get("id", self.section)
        if tag == "tr":
            self.tables[self.section].append([])
        if tag in ("td", "th"):
            self.tables[self.section][-1].append("")
            self.in_cell = True
        if tag not in ("br", "img", "meta"):
            self.open.append(attrs.get("id"))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.in_cell = False
        if tag not in ("br", "img", "meta") and self.open:
            self.open.pop()

    def handle_data(self, data):
        for element in self.open:
            if element:
                self.text[element] += data
        if self.in_cell:
            self.tables[self.section][-1][-1] += data


def _tutorial(info: dict) -> bool:
    """A record of the tutorial's fits: the seed's problem at its default size, what the summary speaks of."""
    return info["kind"] == "fit" and info["problem"]["name"] == "quadratic" and info["size"] == "default"


def fixture_files(path: Path) -> list[dict]:
    """The latest saved run of each machine of the fixture folder (what the report shows), as records (the storage's
    files are of schema 0: records.upgrade reads them)."""
    latest = [sorted(machine.glob("*.json"))[-1] for machine in sorted(path.iterdir())]
    return [validate_run(json.loads(file.read_text())).model_dump() for file in latest]


# The current schema's run in the default tier; the schema-0 storage (a bigger report, ~10 s) in the slow one.
@pytest.fixture(
    scope="module",
    params=[pytest.param(p, id=p.name, marks=[] if p.name == "v1" else [pytest.mark.slow]) for p in FIXTURES],
)
def report(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(request.param), "--out", str(out)]) == 0
    page = Page()
    page.feed((out / "report.html").read_text())
    return request.param, page, (out / "report.md").read_text()


def test_summary_names_the_fastest_trainer_of_each_framework(report):
    path, page, md = report
    fits = [b for run in fixture_files(path) for b in run["benchmarks"] if _tutorial(b["extra_info"])]
    best: dict[str, tuple[float, str]] = {}
    for b in fits:
        info = b["extra_info"]
        if not info["diverged"]:
            mine = (b["stats"]["median"], info["trainer"])
            best[info["backend"]] = min(best.get(info["backend"], (np.inf, "")), mine)
    header, *rows = page.tables["summary"]
    shown = {row[header.index("framework")]: row[header.index("trainer")] for row in rows}
    assert shown == {backend: trainer for backend, (_, trainer) in best.items()}
    assert all(row[header.index("speedup")].endswith("×") for row in rows)
    assert "## Summary" in md
    assert md.index("## Summary") < md.index("## Environment")


def test_summary_says_the_machine_agreement_and_targets(report):
    path, page, md = report
    run = fixture_files(path)[-1]
    env = run["machine_info"]["regbench"]
    machine = page.text["machine"]
    assert run["machine_info"]["cpu"]["brand_raw"] in machine
    assert f"{env['cpu_count']} cores" in machine
    assert "GPU: none" in machine
    assert f"numpy {env['versions']['numpy']}" in machine
    rel: dict[str, dict[str, float]] = defaultdict(dict)  # dtype -> trainer -> its loss difference
    for b in run["benchmarks"]:
        info = b["extra_info"]
        if _tutorial(info) and not ("reference" in info["roles"] and info["dtype"] == "float64"):
            rel[info["dtype"]][info["trainer"]] = info["ref_loss_rel"]
    for dtype, by_trainer in rel.items():
        line = page.text[f"agreement-{dtype}"]
        assert line.startswith(f"Agreement: {dtype}: every trainer agrees with the float64 reference"), line
        worst = max(by_trainer.values())
        assert any(f"{worst:.2g}, {t};" in line for t, value in by_trainer.items() if value == worst), line
    count, failed = targets.unmet(targets.judge(load([path])))
    line = page.text["targets-met"]
    assert line.startswith("Targets over 1 run, provisional (`regbench targets` judges"), line
    assert f"): {count - failed} of {count} met" in line
    assert (f"; {failed} not met" in line) == bool(failed), line
    unmeasured = len(targets.unmeasured(targets.judge(load([path]))))
    assert (f"; {unmeasured} not measured by this run" in line) == bool(unmeasured), line
    assert f"): {count - failed} of {count} met" in md


def test_every_contents_link_resolves(report):
    _, page, md = report
    assert page.links
    assert "contents" in page.ids
    assert set(page.links) <= page.ids, set(page.links) - page.ids
    for anchor in page.links:
        assert f'<a id="{anchor}"></a>' in md, anchor


def test_skipped_trainers_are_one_list_and_never_rows(report):
    path, page, md = report
    outcomes = [o for run in fixture_files(path) for o in run["regbench"]["outcomes"]]
    skipped = {(o["trainer"] or o["test"], o["reason"]) for o in outcomes if o["outcome"] == "skipped"}
    assert skipped
    listed = page.text["skipped-list"]
    for trainer, reason in skipped:
        line = next(line.replace("\\", "") for line in md.splitlines() if line.startswith(f"- {reason}:"))
        assert trainer in line  # (Markdown's escapes removed)
        assert reason in listed
        assert trainer in listed
    speed = page.tables["speed"]
    trainers = {row[speed[0].index("trainer")] for row in speed[1:]}
    assert trainers
    assert not trainers & {trainer for trainer, _ in skipped}
    assert not any("skipped" in cell for row in speed for cell in row)


def test_the_machine_line_says_how_much_of_the_cpus_other_processes_took(tmp_path):
    """A run that recorded ``others_cpu`` says its median and its most, with the benchmark, in its machine line."""
    from tests.test_drift import run

    path = run(tmp_path, "0001_a.json", 1, others_cpu=0.45)  # the planted trainer's rounds: 45 %, the rest 1 %
    runs = load([path])
    (machine, name), *_ = runs.machines
    note = summary.others_cpu_note(runs.table, machine, name)
    assert note == ("; other processes took 1% of the CPUs during a benchmark's rounds (median; at most 45%, "
                    "numpy-manual-tutorial-cpu float32 n=100)")  # fmt: skip
    assert summary.others_cpu_note(load([DATA / "v1"]).table, machine, name) == ""  # saved before it was recorded
