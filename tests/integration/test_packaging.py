"""The wheel carries everything the installed service reads from disk."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_migrations_and_every_template(tmp_path: Path) -> None:
    subprocess.run(  # noqa: S603 - pip on our own source tree
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob("forewarn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {
        str(path.relative_to(ROOT))
        for pattern in (
            "migrations/**/*.py",
            "migrations/*.mako",
            "app/templates/*",
            "notifiers/templates/**/*",
            "forewarn/scenarios/*.yaml",
        )
        for path in ROOT.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert on_disk and on_disk <= names, sorted(on_disk - names)
