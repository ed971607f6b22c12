"""Shared test helpers: where the real FITS data lives, and a way to copy it read-only."""

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data(tmp_path):
    """Copy a folder of ../shared/data into tmp and return a function giving its path (skip if absent)."""

    def copy(relative: str) -> Path:
        source = SHARED_DATA / relative
        if not source.exists():
            pytest.skip(f"real test data {source} is absent (it lives in ../shared/data beside the project)")
        target = tmp_path / "data" / relative
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return target

    return copy
