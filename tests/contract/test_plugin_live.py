"""The whole plugin against a live ComfyUI (set ZIMAGE_CONTRACT_HOST), on a model-free suite.

    ZIMAGE_CONTRACT_HOST=http://127.0.0.1:8188 pytest tests/contract/test_plugin_live.py

The fake cannot run this graph (it implements only the recorded node classes), so without a
host the test skips. Scores come from the tests' scorer doubles: the edge-sensitive CLIP double
sees the "broken" config's noise, so its cases fail, and the gate with them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doubles import CONFTEST

HOST = os.environ.get("ZIMAGE_CONTRACT_HOST")
SUITE = Path(__file__).parent / "modelfree"

pytestmark = pytest.mark.skipif(
    not HOST, reason="set ZIMAGE_CONTRACT_HOST to run the plugin against a live ComfyUI"
)


def test_plugin_end_to_end_on_a_live_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kept under a name pytest does not collect; it becomes a suite when copied as zimage*.toml.
    shutil.copy(SUITE / "workflow_api.json", pytester.path / "workflow_api.json")
    shutil.copy(SUITE / "modelfree_suite.toml", pytester.path / "zimage_modelfree.toml")
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={HOST}",
        f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
        "--zimage-refresh",
    )
    result.assert_outcomes(passed=18, failed=9)
    result.stdout.fnmatch_lines(
        ["*blue-broken-s1: CLIPScore * vs reference clean *", "zimage gate: FAILED*broken*"]
    )
    records = [
        json.loads(line)
        for line in (report / "results.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(records) == 27
    assert all(Path(r["image_path"]).is_file() for r in records)
    assert all(r["server_seconds"] is not None for r in records)
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    server = summary["environment"]["servers"][0]
    assert server["comfyui_version"]
    verdicts = {c["key"]: c["verdict"] for c in summary["suites"][0]["configs"]}
    assert verdicts["broken"] == "fail"
