"""Settings from the environment: values parse, bad values are refused with the name."""

from __future__ import annotations

import pytest

from facecheck.settings import Settings, SettingsError


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("0", False), ("False", False)])
def test_access_log_switch(monkeypatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("FACECHECK_ACCESS_LOG", raw)
    assert Settings.from_env().access_log is expected


def test_access_log_is_off_by_default(monkeypatch) -> None:
    monkeypatch.delenv("FACECHECK_ACCESS_LOG", raising=False)
    assert Settings.from_env().access_log is False


@pytest.mark.parametrize(
    "name, raw",
    [
        ("FACECHECK_ACCESS_LOG", "yes please"),
        ("FACECHECK_PORT", "http"),
        ("FACECHECK_LIVENESS_MIN_CONTEXT", "1.5"),
        ("FACECHECK_LIVENESS_MIN_CONTEXT", "half"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch, name: str, raw: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingsError, match=name):
        Settings.from_env()


def test_runner_processes_default_and_override(monkeypatch) -> None:
    from runners.base import runner_config

    monkeypatch.delenv("FACECHECK_DEEPFAKE_RUNNER_WORKERS", raising=False)
    assert runner_config("deepfake", workers=2)["workers"] == 2
    monkeypatch.setenv("FACECHECK_DEEPFAKE_RUNNER_WORKERS", "3")
    assert runner_config("deepfake", workers=2)["workers"] == 3
    monkeypatch.setenv("FACECHECK_DEEPFAKE_RUNNER_WORKERS", "0")
    with pytest.raises(SettingsError, match="FACECHECK_DEEPFAKE_RUNNER_WORKERS"):
        runner_config("deepfake", workers=2)
