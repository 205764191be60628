"""pyproject.toml and environment.yml pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml


def pins_from_pyproject(root) -> dict[str, str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [
        s for extra in project["optional-dependencies"].values() for s in extra
    ]
    return dict(_split(s) for s in specs)


def pins_from_environment(root) -> dict[str, str]:
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(_split(s) for s in pip)


def _split(spec: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", spec.strip())
    assert match, f"not an exact pin: {spec!r}"
    return match.group(1).lower(), match.group(2)


def test_every_dependency_is_pinned_identically(repo_root):
    assert pins_from_pyproject(repo_root) == pins_from_environment(repo_root)


def test_environment_python_matches_pyproject(repo_root):
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
