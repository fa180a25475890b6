"""The repository itself carries no generated secret and no database."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to check")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def test_no_install_secret_or_database_is_committed() -> None:
    offending = [p for p in _tracked_files()
                 if p.endswith((".secret", ".db", ".db-wal", ".db-shm"))]
    assert offending == [], f"generated files committed: {offending}"


def test_no_machine_specific_path_is_written_into_the_repository() -> None:
    offending = []
    for rel in _tracked_files():
        path = ROOT / rel
        if path.suffix in {".png", ".jpg", ".gz", ".zip", ".whl", ".pkl", ".joblib"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for marker in ("/work/", "/root/", "/home/"):
            if marker in text and rel != "tests/test_repository.py":
                offending.append(f"{rel}: {marker}")
    assert offending == [], f"machine-specific paths: {offending}"
