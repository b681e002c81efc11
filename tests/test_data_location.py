"""Where training, evaluation and the benchmarks read the developer data: FACECHECK_DATA,
else `shared/data` beside the checkout; never a path of one machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facecheck.settings import PROJECT_ROOT
from training import data


def data_root(env: dict[str, str]) -> Path:
    inherited = {k: v for k, v in os.environ.items() if k != "FACECHECK_DATA"}
    result = subprocess.run(
        [sys.executable, "-c", "from training.data import DATA_ROOT; print(DATA_ROOT)"],
        cwd=PROJECT_ROOT,
        env=inherited | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip())


def test_data_root_is_the_variable_else_beside_the_checkout(tmp_path: Path) -> None:
    assert data_root({"FACECHECK_DATA": str(tmp_path)}) == tmp_path
    assert data_root({}) == PROJECT_ROOT.parent / "shared" / "data"


def test_missing_data_names_the_variable_to_set(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="set FACECHECK_DATA"):
        data.dataset_dir("liveness")
    (tmp_path / "liveness").mkdir()
    (tmp_path / "liveness" / "manifest.csv").write_text("path,label,kind,group,source,split\n")
    assert data.dataset_dir("liveness") == tmp_path / "liveness"
