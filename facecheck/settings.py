"""Every setting, read from environment variables, with defaults and validation.

The README's settings table is this file in prose; keep the two in step."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LIVENESS_MODES = ("liveness", "both", "deepfake")
MULTI_FACE_POLICIES = ("reject", "largest")


class SettingsError(ValueError):
    pass


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def int_from_env(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(name: str, default: float | None) -> float | None:
    raw = _env(name, "" if default is None else str(default))
    if raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").lower()
    if raw not in ("0", "1", "true", "false"):
        raise SettingsError(f"{name} must be 0 or 1, got {raw!r}")
    return raw in ("1", "true")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5001
    liveness_mode: str = "liveness"
    models_dir: Path = PROJECT_ROOT / "models"
    db_path: Path = Path.home() / ".facecheck" / "facecheck.db"
    mongodb_uri: str = ""
    mongodb_db: str = "facecheck"
    store_timeout_ms: int = 2000
    max_body_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_face_px: int = 40
    multi_face_policy: str = "reject"
    multi_face_ratio: float = 0.5
    # /liveness judges a face only when at least this share of its context crop (2.0x the
    # face box) is image: a face cut out of its photo leaves the model nothing but the face,
    # and cropping a printed photo that close got past it (models/liveness.md)
    liveness_min_context: float = 0.5
    liveness_threshold: float | None = None
    deepfake_threshold: float | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    access_log: bool = False
    keepalive_requests: int = 20

    @classmethod
    def from_env(cls) -> Settings:
        ratio = _float("FACECHECK_MULTI_FACE_RATIO", 0.5)
        assert ratio is not None
        if not 0.0 < ratio <= 1.0:
            raise SettingsError("FACECHECK_MULTI_FACE_RATIO must be in (0, 1]")
        min_context = _float("FACECHECK_LIVENESS_MIN_CONTEXT", cls.liveness_min_context)
        assert min_context is not None
        if not 0.0 <= min_context <= 1.0:
            raise SettingsError("FACECHECK_LIVENESS_MIN_CONTEXT must be in [0, 1]")
        cors = tuple(o.strip() for o in _env("FACECHECK_CORS_ORIGINS", "").split(",") if o.strip())
        return cls(
            host=_env("FACECHECK_HOST", cls.host),
            port=int_from_env("FACECHECK_PORT", cls.port, minimum=1),
            liveness_mode=_choice("FACECHECK_LIVENESS_MODE", cls.liveness_mode, LIVENESS_MODES),
            models_dir=Path(_env("FACECHECK_MODELS_DIR", str(cls.models_dir))),
            db_path=Path(_env("FACECHECK_DB_PATH", str(cls.db_path))).expanduser(),
            mongodb_uri=_env("MONGODB_URI", ""),
            mongodb_db=_env("MONGODB_DB", cls.mongodb_db),
            store_timeout_ms=int_from_env("FACECHECK_STORE_TIMEOUT_MS", cls.store_timeout_ms, minimum=50),
            max_body_bytes=int_from_env("FACECHECK_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            max_image_pixels=int_from_env("FACECHECK_MAX_IMAGE_PIXELS", cls.max_image_pixels, minimum=1),
            min_face_px=int_from_env("FACECHECK_MIN_FACE_PX", cls.min_face_px, minimum=1),
            multi_face_policy=_choice(
                "FACECHECK_MULTI_FACE_POLICY", cls.multi_face_policy, MULTI_FACE_POLICIES
            ),
            multi_face_ratio=ratio,
            liveness_min_context=min_context,
            liveness_threshold=_float("FACECHECK_LIVENESS_THRESHOLD", None),
            deepfake_threshold=_float("FACECHECK_DEEPFAKE_THRESHOLD", None),
            cors_origins=cors,
            log_level=_env("FACECHECK_LOG_LEVEL", cls.log_level).upper(),
            access_log=_bool("FACECHECK_ACCESS_LOG", cls.access_log),
            keepalive_requests=int_from_env("FACECHECK_KEEPALIVE_REQUESTS", cls.keepalive_requests),
        )
