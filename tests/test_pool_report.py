"""What the pool reports for summary.json: hardware classes, the determinism check, each
server's work, and which server made each image; and the learnt speeds kept for the next run.

Three fake servers, two of one GPU and one reporting another: two hardware classes, the
two-server class checked for cross-server determinism.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from pytest_zimage_quality._fake.fake import FakeComfyUI
from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.engine import Engine
from pytest_zimage_quality.generation import read_estimates, write_estimates
from pytest_zimage_quality.hosts import parse_host
from pytest_zimage_quality.servers import config_graphs
from pytest_zimage_quality.settings import Settings
from pytest_zimage_quality.suite import Suite, load_suite
from pytest_zimage_quality.summary.build import build_summary
from pytest_zimage_quality.summary.pool import PoolSummary
from tests.helpers import write_small_suite
from tests.helpers.doubles import DryRunSettings, double_specs
from tests.helpers.summary_records import ENVIRONMENT, records

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "docs" / "summary.schema.json").read_text(encoding="utf-8")
)
H100 = "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
GB10 = "cuda:0 NVIDIA GB10 : cudaMallocAsync"


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return load_suite(write_small_suite(tmp_path_factory.mktemp("suite"), size=32))


@pytest.fixture(scope="module")
def fakes(suite: Suite) -> Iterator[list[FakeComfyUI]]:
    models = FakeComfyUI.models_for_graphs(list(config_graphs([suite]).values()))
    servers = [
        FakeComfyUI(models=models, device=device, image_latency=0.02)
        for device in (H100, H100, GB10)
    ]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, suite: Suite, fakes: list[FakeComfyUI]
) -> Iterator[Engine]:
    """One run of the whole small suite over the three servers, shared by the tests."""
    hosts = tuple(SimpleNamespace(url=str(f.url)) for f in fakes)
    settings = DryRunSettings(hosts=hosts, simulated=False)
    engine = Engine(
        settings, report_dir=ReportDir(tmp_path_factory.mktemp("report"), "run"), cache=None
    )
    planned = list(suite.cases())
    engine.start([suite], planned)
    engine.provide_scorers(lambda: double_specs())
    for case in planned:
        engine.outcome(case)
    yield engine
    engine.close(cancel=True)


@pytest.mark.slow  # one run of the small suite over three fake servers (~4 s)
def test_the_report_names_classes_determinism_and_each_servers_work(
    engine: Engine, suite: Suite, fakes: list[FakeComfyUI]
) -> None:
    assert engine.generation is not None
    report = engine.generation.report()
    urls = [str(f.url) for f in fakes]

    classes = report["hardware_classes"]
    assert [sorted(c["servers"]) for c in classes] == [sorted(urls[:2]), [urls[2]]]
    assert [c["gpu"] for c in classes] == ["NVIDIA H100 80GB HBM3", "NVIDIA GB10"]

    determinism = report["determinism"]
    (checked,) = determinism["classes"]  # only the class with two servers is checked
    assert checked["id"] == classes[0]["id"]
    assert checked["bit_identical"]
    assert checked["distinct_images"] == 1
    assert determinism["pinned_classes"] == []

    pool = report["pool"]
    servers = {s["url"]: s for s in pool["servers"]}
    assert set(servers) == set(urls)
    planned = len(list(suite.cases()))
    # every case once, through the pool, except the check's case (made outside the pool)
    assert sum(s["images"] for s in servers.values()) == planned - 1
    assert all(s["images"] > 0 for s in servers.values())  # more servers than configs: all work
    assert sum(f.generations for f in fakes) == planned + 1  # the check's second copy
    for server in servers.values():
        assert 0.0 <= server["idle_fraction"] <= 1.0
        assert server["alive"]
    for fake in fakes:  # the pool counts its own loads (not the check's): never more
        assert servers[str(fake.url)]["loads"] <= fake.model_loads
    assert sum(s["loads"] for s in servers.values()) >= len(suite.configs) - 1
    assert pool["wall_seconds"] > 0
    assert set(pool["estimates"]) == {c["id"] for c in classes}

    summary = PoolSummary.from_report(report)
    as_json = {
        "hardware_classes": list(summary.hardware_classes),
        "determinism": summary.determinism,
        "pool": summary.pool_dict(),
    }
    assert PoolSummary.from_report(as_json) == summary
    assert len(summary.class_lines()) == 2
    assert "NVIDIA GB10" in summary.class_lines()[1]
    assert urls[2] in summary.class_lines()[1]


@pytest.mark.slow  # one run of the small suite over three fake servers (~4 s)
def test_each_image_says_which_server_made_it(engine: Engine, suite: Suite) -> None:
    assert engine.generation is not None
    assert engine.generation.dispatch is not None
    report_urls = {s["url"] for s in engine.generation.report()["pool"]["servers"]}
    for case in suite.cases():
        outcome = engine.outcome(case)
        assert outcome.generated.host in report_urls
        made_by = engine.generation.dispatch.server_of(outcome.job)
        assert made_by in (outcome.generated.host, None)  # None: the determinism check's case


@pytest.mark.slow  # one run of the small suite over three fake servers (~4 s)
def test_a_reference_and_its_candidates_are_made_in_one_class(engine: Engine, suite: Suite) -> None:
    # the determinism check's case included: its image comes from one server outside the
    # pool, and its candidates must follow it into that server's class
    class_of = {s.url: s.hardware_class for s in engine.servers}
    made_in: dict[tuple[str, int], set[str]] = {}
    for case in suite.cases():
        host = engine.outcome(case).generated.host
        made_in.setdefault((case.prompt.key, case.seed), set()).add(class_of[host])
    assert all(len(classes) == 1 for classes in made_in.values()), made_in


@pytest.mark.slow  # one run of the small suite over three fake servers (~4 s)
def test_summary_json_carries_the_pool_blocks(engine: Engine) -> None:
    assert engine.generation is not None
    summary = build_summary(
        records(),
        suites=(),
        settings=Settings(hosts=(parse_host("http://gpu:8188"),)),
        environment=ENVIRONMENT,
        run_id="run-1",
    )
    summary = dataclasses.replace(summary, pool=PoolSummary.from_report(engine.generation.report()))
    data = summary.to_dict()
    jsonschema.validate(data, SCHEMA)
    assert len(data["hardware_classes"]) == 2
    assert data["determinism"]["classes"][0]["bit_identical"] is True
    assert len(data["pool"]["servers"]) == 3


def test_a_summary_without_a_pool_keeps_the_keys_empty() -> None:
    data = build_summary(
        records(), suites=(), settings=Settings(), environment=ENVIRONMENT, run_id="r"
    ).to_dict()
    jsonschema.validate(data, SCHEMA)
    assert data["hardware_classes"] == []
    assert data["determinism"] is None
    assert data["pool"] is None


class _Cache:
    """pytest's ``config.cache`` as far as the estimates go."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def test_learnt_speeds_are_kept_per_class_for_the_next_run() -> None:
    cache = _Cache()
    assert read_estimates(cache) == {}
    write_estimates(cache, {"hw-a": (1.5, 4.0)})
    write_estimates(cache, {"hw-b": (0.5, 2.0)})  # another class later: both kept
    assert read_estimates(cache) == {"hw-a": (1.5, 4.0), "hw-b": (0.5, 2.0)}
    write_estimates(cache, {"hw-a": (1.2, 3.0)})  # the newest run's figure wins
    assert read_estimates(cache)["hw-a"] == (1.2, 3.0)
    cache.values["zimage/pool-estimates"] = {"hw-c": "garbage", "hw-d": [0, 1], "hw-e": [1, -1]}
    assert read_estimates(cache) == {}  # unusable entries are ignored, never a crash
    write_estimates(None, {"hw-a": (1.0, 1.0)})  # no cacheprovider: nothing kept, no error
    assert read_estimates(None) == {}


def test_report_html_says_which_server_made_each_image(tmp_path: Path) -> None:
    from pytest_zimage_quality.report.html import write_html_report

    rows = [
        r.with_(host="http://gpu-a:8188" if r.role == "reference" else "http://gpu-b:8188")
        for r in records()
    ]
    summary = build_summary(
        rows, suites=(), settings=Settings(), environment=ENVIRONMENT, run_id="r"
    )
    report_dir = ReportDir(tmp_path / "report", "r")
    write_html_report(report_dir, summary, rows)
    html = report_dir.html_path.read_text(encoding="utf-8")
    assert html.count('<span class="small server">http://gpu-a:8188</span>') == 18
    assert html.count('<span class="small server">http://gpu-b:8188</span>') == 18
    assert "made by http://gpu-b:8188" in html


def test_the_terminal_names_each_class_and_each_servers_work() -> None:
    summary = PoolSummary.from_report(
        {
            "hardware_classes": [
                {"id": "hw-a", "label": "NVIDIA H200 · ComfyUI 0.18.1", "servers": ["u1", "u2"]},
                {"id": "hw-b", "label": "NVIDIA GB10 · ComfyUI 0.18.1", "servers": ["u3"]},
            ],
            "determinism": {
                "case": "c",
                "classes": [{"id": "hw-a", "bit_identical": True}],
                "pinned_classes": [],
            },
            "pool": {
                "wall_seconds": 10.0,
                "servers": [
                    {"url": "u1", "images": 5, "loads": 1, "idle_fraction": 0.1},
                    {"url": "u2", "images": 4, "loads": 1, "idle_fraction": 0.2, "moved_out": 2},
                    {"url": "u3", "images": 6, "loads": 2, "idle_fraction": 0.0, "stolen_in": 1},
                ],
                "moved": [{"case": "x", "from": "u2"}, {"case": "y", "from": "u2"}],
            },
        }
    )
    lines = summary.terminal_lines()
    assert lines[:2] == [
        "zimage hardware class hw-a: NVIDIA H200 · ComfyUI 0.18.1 — 2 servers: u1, u2",
        "zimage hardware class hw-b: NVIDIA GB10 · ComfyUI 0.18.1 — 1 server: u3",
    ]
    assert lines[2].startswith("zimage determinism hw-a: bit-identical")
    assert "zimage server u2: 4 images, 1 model loads, idle 20%, 2 moved away (died)" in lines
    assert "zimage server u3: 6 images, 2 model loads, idle 0%, 1 taken over" in lines
    assert lines[-1].startswith("zimage: 2 case(s) resubmitted")
