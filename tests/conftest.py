"""Fixtures shared by every test module: where the repo and its real test photos are."""
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TEST_DATA = REPO_ROOT / "tests" / "data"

# Paddle leaves OMP at 1 thread when unset; tests are small, two threads match the CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def faces_dir() -> pathlib.Path:
    """Real public-domain portraits, one face each (see tests/data/SOURCES.md)."""
    return TEST_DATA / "faces"


@pytest.fixture(scope="session")
def nonfaces_dir() -> pathlib.Path:
    """Real photos with no human face (a cat, a cup of coffee)."""
    return TEST_DATA / "nonfaces"
