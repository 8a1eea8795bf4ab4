"""Shared fixtures: real sample data from ../shared/data, and small synthetic dataset roots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from schemas.root import DatasetRoot

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# SSU_SHARED_DATA points elsewhere (a git worktree beside the main checkout has no ../shared of its own)
SHARED_DATA = Path(os.environ.get("SSU_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test is slow (`make test-fast` leaves it out) without each file having to say so."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real clips and index files); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _synth_root_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collection.synth import make_synthetic_root

    path = tmp_path_factory.mktemp("synth") / "root"
    make_synthetic_root(path, clips=6, seed=0)
    return path


@pytest.fixture(scope="session")
def synth_root(_synth_root_master: Path) -> DatasetRoot:
    """A 6-clip synthetic root with splits (train 4 / val 1 / test 1), shared by the session: do not write."""
    from schemas.root import DatasetRoot

    return DatasetRoot.open(_synth_root_master)


@pytest.fixture()
def synth_root_copy(_synth_root_master: Path, tmp_path: Path) -> DatasetRoot:
    """A private copy of the synthetic root that a test may modify."""
    from schemas.root import DatasetRoot

    dst = tmp_path / "root"
    shutil.copytree(_synth_root_master, dst)
    return DatasetRoot.open(dst)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run hundreds of tiny ops per frame: on a shared 2-core machine one thread is several
    times faster than two (no OpenMP spin-waiting on a busy core). Use with pytest.mark.usefixtures."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
