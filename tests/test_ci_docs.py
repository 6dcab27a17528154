"""docs/ci.md's GitHub Actions workflow and GitLab CI job: they parse, the page carries them
unchanged, their commands are the README's, and every option they pass exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_zimage_quality.settings import OPTIONS
from tests.helpers import REPO

GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
GITLAB = REPO / "docs" / "ci" / "gitlab-ci.yml"
DOC = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
README = (REPO / "README.md").read_text(encoding="utf-8")
FLAGS = {opt.flag for opt in OPTIONS.values() if opt.flag}


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def github_commands() -> list[str]:
    steps = load(GITHUB)["jobs"]["zimage"]["steps"]
    return [line for step in steps for line in str(step.get("run", "")).splitlines()]


def gitlab_commands() -> list[str]:
    job = load(GITLAB)["zimage-quality-gate"]
    return [line for entry in job["script"] for line in str(entry).splitlines()]


def readme_ci_block() -> list[str]:
    section = README.split("## In CI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's 'In CI' section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def commands(lines: list[str], start: str) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith(start)]


@pytest.mark.parametrize("path", [GITHUB, GITLAB])
def test_the_file_parses_and_the_page_carries_it_unchanged(path: Path) -> None:
    assert load(path)
    assert path.read_text(encoding="utf-8").rstrip() in DOC


def test_github_workflow_shape() -> None:
    workflow = load(GITHUB)
    assert set(workflow[True]) == {"pull_request", "push"}  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["zimage"]["steps"]
    uses = [str(step.get("uses", "")) for step in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert cache["with"]["path"] == ".zimage-cache"
    assert {u["with"]["name"] for u in uploads} == {"zimage-report", "zimage-baseline"}
    assert workflow["jobs"]["zimage"]["env"]["ZIMAGE_HOST"] == "${{ secrets.ZIMAGE_HOST }}"


def test_gitlab_job_shape() -> None:
    job = load(GITLAB)["zimage-quality-gate"]
    assert job["cache"][0]["paths"] == [".zimage-cache/"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["paths"] == ["zimage-report/"]
    assert job["artifacts"]["reports"]["junit"] == "zimage-report/junit.xml"


@pytest.mark.parametrize("lines", [github_commands(), gitlab_commands()], ids=["github", "gitlab"])
def test_install_and_test_commands_are_the_readmes(lines: list[str]) -> None:
    readme = readme_ci_block()
    installs = commands(lines, "pip install")
    assert installs == commands(readme, "pip install")
    assert installs[0].startswith("pip install torch==")  # torch first: nothing may replace it
    tests = commands(lines, "pytest ")
    assert tests == commands(readme, "pytest ")
    assert len(tests) == 1


def test_every_option_the_commands_pass_exists() -> None:
    (line,) = commands(readme_ci_block(), "pytest ")
    words = shlex.split(line.replace("${ZIMAGE_BASELINE:+", "").rstrip("}"))
    used = {w.split("=", 1)[0] for w in words if w.startswith("--zimage-")}
    assert used
    assert used <= FLAGS, used - FLAGS
    assert "--zimage-baseline" in used
    assert "--zimage-markdown" in used
