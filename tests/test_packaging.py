"""Every data file of the package (templates, static files, demo and model data, the
migrations' template) is declared as package data, so a wheel carries it: a console page
whose template is left out works from a checkout and fails when installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_under_siyu_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["siyu"]
    package = ROOT / "siyu"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    data = {p for p in package.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc"}
            and "__pycache__" not in p.parts}
    missing = sorted(str(p.relative_to(package)) for p in data - shipped)
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"
