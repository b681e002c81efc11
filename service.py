"""facecheck's HTTP front: the old containers' contract on top of two model runners.

The front parses, authenticates, decodes once, finds the face and cuts the crops;
the runners (runners/) batch the crops through the ONNX models. Endpoints:
GET /status_check, POST /liveness, POST /deepfake (see README and contract.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")

import bentoml  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, PlainTextResponse  # noqa: E402

from facecheck import contract  # noqa: E402
from facecheck.connections import RotateConnections  # noqa: E402
from facecheck.faces import FaceNotUsable, YuNetDetector  # noqa: E402
from facecheck.images import ImageError, decode_selfie  # noqa: E402
from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, ModelInfo, read_model_info  # noqa: E402
from facecheck.pipeline import check_crops  # noqa: E402
from facecheck.request_body import BodyTooLarge, read_body  # noqa: E402
from facecheck.settings import Settings  # noqa: E402
from facecheck.store import AuthResult, RequestRecord, StoreUnavailable, open_store  # noqa: E402
from runners.deepfake import DeepfakeRunner  # noqa: E402
from runners.liveness import LivenessRunner  # noqa: E402

logger = logging.getLogger("facecheck")
SETTINGS = Settings.from_env()
FRONT_WORKERS = int(os.environ.get("FACECHECK_WORKERS", "2"))
# per-check errors: which corrupt-image wording a client of that check expects
FACE_ERRORS = {
    "no_face": contract.NO_FACE,
    "face_too_small": contract.FACE_TOO_SMALL,
    "multiple_faces": contract.MULTIPLE_FACES,
    "face_fills_image": contract.FACE_FILLS_IMAGE,
}

app = FastAPI(
    title="facecheck",
    version="1.0",
    description="Liveness (presentation-attack) and deepfake checks on one selfie.",
    docs_url=None,
    redoc_url=None,
)
app.add_middleware(RotateConnections, max_requests=SETTINGS.keepalive_requests)
if SETTINGS.cors_origins:
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(
        CORSMiddleware, allow_origins=list(SETTINGS.cors_origins), allow_methods=["GET", "POST"]
    )


# an oversized body may be left partly unread: the connection cannot carry another request
CLOSE_CONNECTION = {"connection": "close"}


class Rejected(Exception):
    """A request answered with an error body; `outcome` is what the store records."""

    def __init__(self, status: int, body: dict, outcome: str, headers: dict[str, str] | None = None):
        super().__init__(outcome)
        self.status, self.body, self.outcome, self.headers = status, body, outcome, headers


@dataclass
class Verdict:
    liveness: float | None = None
    deepfake: float | None = None


REQUEST_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["hash_id", "selfie_image"],
                    "properties": {
                        "hash_id": {"type": "string", "description": "API key issued by the operator"},
                        "selfie_image": {"type": "string", "description": "base64 or data URL of a PNG/JPEG"},
                    },
                }
            }
        },
    },
    "responses": {
        "201": {"description": "scored"},
        "400": {"description": "not JSON, missing or corrupt image"},
        "401": {"description": "Invalid credentials"},
        "413": {"description": "body too large"},
        "422": {"description": "no usable face"},
        "429": {"description": "request limit reached"},
        "503": {"description": "model or store unavailable"},
    },
}


@bentoml.service(
    name="facecheck",
    workers=FRONT_WORKERS,
    traffic={"timeout": 60},
    http={"host": SETTINGS.host, "port": SETTINGS.port},
    envs=[{"name": "BENTOML_DO_NOT_TRACK", "value": "True"}],
    # Every request is recorded in the store (key, endpoint, status, outcome, latency); BentoML's
    # own access log line per request would repeat that, at a cost (docs/performance.md,
    # "Settings in the code")
    logging={"access": {"enabled": SETTINGS.access_log}},
    # nothing exports traces: excluded, the tracing middleware skips its per-request spans
    tracing={"excluded_urls": [".*"]},
)
@bentoml.asgi_app(app, path="/")
class Facecheck:
    liveness_runner = bentoml.depends(LivenessRunner)
    deepfake_runner = bentoml.depends(DeepfakeRunner)

    def __init__(self) -> None:
        logging.getLogger("facecheck").setLevel(SETTINGS.log_level)
        self.settings = SETTINGS
        self.store = open_store(SETTINGS)
        self.detector = YuNetDetector()
        self.models: dict[str, ModelInfo | None] = {
            "liveness": read_model_info(SETTINGS.models_dir / LIVENESS_FILE),
            "deepfake": read_model_info(SETTINGS.models_dir / DEEPFAKE_FILE),
        }
        self.runners = {"liveness": self.liveness_runner, "deepfake": self.deepfake_runner}

    # ---- endpoints -------------------------------------------------------------------------

    @app.get("/status_check", response_class=PlainTextResponse)
    async def status_check(self) -> PlainTextResponse:
        live = await self._ready()
        return PlainTextResponse(
            contract.STATUS_LIVE if live else contract.STATUS_NOT_LIVE, status_code=200 if live else 503
        )

    @app.post("/liveness", status_code=201, openapi_extra=REQUEST_SCHEMA)
    async def liveness(self, request: Request) -> JSONResponse:
        """Runs the checks that FACECHECK_LIVENESS_MODE names (liveness, both, deepfake)."""
        mode = self.settings.liveness_mode
        checks = ("liveness", "deepfake") if mode == "both" else (mode,)
        return await self._handle(request, "/liveness", checks)

    @app.post("/deepfake", status_code=201, openapi_extra=REQUEST_SCHEMA)
    async def deepfake(self, request: Request) -> JSONResponse:
        return await self._handle(request, "/deepfake", ("deepfake",))

    # ---- request path ----------------------------------------------------------------------

    async def _handle(self, request: Request, endpoint: str, checks: tuple[str, ...]) -> JSONResponse:
        started_at, t0 = time.time(), time.perf_counter()
        key_id: str | None = None
        verdict = Verdict()
        headers: dict[str, str] | None = None
        try:
            payload = await self._read_json(request)
            key_id = await self._authenticate(payload.get("hash_id"))
            crops = await self._face_crops(payload.get("selfie_image"), checks)
            verdict = await self._score(key_id, crops, checks)
            status, body, outcome = contract.HTTP_CREATED, self._success_body(verdict, checks), "success"
        except Rejected as rejected:
            status, body, outcome = rejected.status, rejected.body, rejected.outcome
            headers = rejected.headers
        except Exception:
            logger.exception("unexpected error on %s", endpoint)  # no request data in the log
            status, body, outcome = (
                contract.HTTP_UNAVAILABLE,
                {"error": contract.INTERNAL_ERROR},
                "internal_error",
            )
        if outcome == "store_unavailable":
            # the store just failed: trying to record that in it would only add a second
            # timeout to this request's wait
            logger.error("request record lost: store unavailable (%s)", endpoint)
            return JSONResponse(body, status_code=status, headers=headers)
        record = RequestRecord(
            key_id=key_id,
            endpoint=endpoint,
            started_at=started_at,
            status=status,
            outcome=outcome,
            liveness_score=verdict.liveness,
            deepfake_score=verdict.deepfake,
            latency_ms=round((time.perf_counter() - t0) * 1000, 2),
        )
        try:
            await asyncio.to_thread(self.store.record, record)
        except StoreUnavailable:
            logger.error("request record lost: store unavailable (%s %s)", endpoint, outcome)
            if outcome == "success" and key_id is not None:
                await self._release(key_id)
                status, body = contract.HTTP_UNAVAILABLE, {"error": contract.STORE_UNAVAILABLE}
        return JSONResponse(body, status_code=status, headers=headers)

    async def _read_json(self, request: Request) -> dict:
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except BodyTooLarge:
            raise Rejected(
                contract.HTTP_PAYLOAD_TOO_LARGE,
                {"error": contract.BODY_TOO_LARGE},
                "too_large",
                headers=CLOSE_CONNECTION,
            ) from None
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise Rejected(contract.HTTP_BAD_REQUEST, {"error": contract.NOT_JSON}, "not_json")
        return payload

    async def _authenticate(self, hash_id: object) -> str:
        try:
            result, key_id = await asyncio.to_thread(self.store.authenticate, hash_id)
        except StoreUnavailable:
            raise Rejected(
                contract.HTTP_UNAVAILABLE, {"error": contract.STORE_UNAVAILABLE}, "store_unavailable"
            ) from None
        if result != AuthResult.OK or key_id is None:
            raise Rejected(
                contract.HTTP_UNAUTHORIZED, {"message": contract.INVALID_CREDENTIALS}, "invalid_credentials"
            )
        return key_id

    async def _face_crops(self, selfie: object, checks: tuple[str, ...]) -> dict:
        if not isinstance(selfie, str) or not selfie.strip():
            raise Rejected(contract.HTTP_BAD_REQUEST, {"error": contract.MISSING_IMAGE}, "missing_image")
        for check in checks:
            if self.models[check] is None:
                message = contract.MODEL_UNAVAILABLE.format(model=check)
                raise Rejected(contract.HTTP_UNAVAILABLE, {"error": message}, "model_unavailable")
        try:
            return await asyncio.to_thread(self._decode_and_crop, selfie, checks)
        except ImageError:
            # deepfake-only answers use the deepfake container's own wording
            corrupt = contract.CORRUPT_IMAGE_DEEPFAKE if checks == ("deepfake",) else contract.CORRUPT_IMAGE
            raise Rejected(contract.HTTP_BAD_REQUEST, {"error": corrupt}, "corrupt_image") from None
        except FaceNotUsable as exc:
            raise Rejected(
                contract.HTTP_UNPROCESSABLE, {"error": FACE_ERRORS[exc.reason]}, exc.reason
            ) from None

    def _decode_and_crop(self, selfie: str, checks: tuple[str, ...]) -> dict:
        decoded = decode_selfie(selfie, self.settings.max_image_pixels)
        specs = {c: self.models[c].crop for c in checks}  # type: ignore[union-attr]
        return check_crops(decoded, self.detector, self.settings, specs)

    async def _score(self, key_id: str, crops: dict, checks: tuple[str, ...]) -> Verdict:
        try:
            allowed = await asyncio.to_thread(self.store.consume, key_id)
        except StoreUnavailable:
            raise Rejected(
                contract.HTTP_UNAVAILABLE, {"error": contract.STORE_UNAVAILABLE}, "store_unavailable"
            ) from None
        if not allowed:
            raise Rejected(
                contract.HTTP_TOO_MANY_REQUESTS, {"message": contract.LIMIT_REACHED}, "limit_reached"
            )
        try:
            scores = await asyncio.gather(*(self.runners[c].to_async.score(crops[c]) for c in checks))
        except Exception:
            await self._release(key_id)
            logger.exception("runner call failed")
            message = contract.CHECK_FAILED.format(model="/".join(checks))
            raise Rejected(contract.HTTP_UNAVAILABLE, {"error": message}, "runner_error") from None
        values = dict(zip(checks, (float(s[0]) for s in scores), strict=True))
        return Verdict(liveness=values.get("liveness"), deepfake=values.get("deepfake"))

    def _success_body(self, verdict: Verdict, checks: tuple[str, ...]) -> dict:
        body: dict = {}
        if verdict.liveness is not None:
            body |= contract.liveness_body(verdict.liveness, self._threshold("liveness"))
        if verdict.deepfake is not None:
            body |= contract.deepfake_body(verdict.deepfake, self._threshold("deepfake"))
        return body

    def _threshold(self, check: str) -> float:
        configured = (
            self.settings.liveness_threshold if check == "liveness" else self.settings.deepfake_threshold
        )
        info = self.models[check]
        assert info is not None
        return info.threshold if configured is None else configured

    async def _release(self, key_id: str) -> None:
        try:
            await asyncio.to_thread(self.store.release, key_id)
        except StoreUnavailable:
            logger.error("could not return a quota unit to key %s", key_id)

    async def _ready(self) -> bool:
        if any(info is None for info in self.models.values()):
            return False
        try:
            await asyncio.to_thread(self.store.ping)
            ready = await asyncio.wait_for(
                asyncio.gather(*(r.to_async.ready() for r in self.runners.values())), timeout=5
            )
        except Exception:
            return False
        return all(ready)
