"""The old containers' HTTP contract: every byte-exact string clients compare, and
the status codes we chose for them (see ../shared/docs/api-contract.md and README)."""

from __future__ import annotations

from typing import Any

STATUS_LIVE = "Service is Live"
STATUS_NOT_LIVE = (
    "Service is Not Live. Please wait for 5 to 10 minutes if it still does not work then restart this build."
)

SUCCESS = "Success"
INVALID_CREDENTIALS = "Invalid credentials"
LIMIT_REACHED = "Your request limit has been reached."
CORRUPT_IMAGE = "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."
# The deepfake container's own wording: no space after the full stop, no final full stop.
CORRUPT_IMAGE_DEEPFAKE = "Invalid or corrupt selfie image.Images must be in PNG, JPG, or JPEG format"
MISSING_IMAGE = "Selfie_image is required and must be a JPEG, JPG or PNG."
IS_DEEPFAKE = "Provided image is deepfake!"
NOT_DEEPFAKE = "Provided image is not deepfake!"

# Errors the old contract left open: ours, documented in the README, kept stable.
NOT_JSON = "Request body must be a JSON object."
BODY_TOO_LARGE = "Request body is too large."
NO_FACE = "No face found in the selfie image."
FACE_TOO_SMALL = "The face in the selfie image is too small to judge."
MULTIPLE_FACES = "More than one face in the selfie image; send a selfie with exactly one face."
FACE_FILLS_IMAGE = "The face fills the selfie image; send the whole camera frame, not a face cut out of it."
MODEL_UNAVAILABLE = "The {model} model is not loaded; this check is unavailable."
CHECK_FAILED = "The {model} check failed; try again shortly."
STORE_UNAVAILABLE = "The key store is unavailable; try again shortly."
INTERNAL_ERROR = "Internal error; the request was not scored."

HTTP_CREATED = 201
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_PAYLOAD_TOO_LARGE = 413
HTTP_UNPROCESSABLE = 422
HTTP_TOO_MANY_REQUESTS = 429
HTTP_UNAVAILABLE = 503


def liveness_body(score: float, threshold: float) -> dict[str, Any]:
    return {
        "liveness_result": {"is_live": int(score >= threshold), "liveness_score": round(score, 7)},
        "message": SUCCESS,
    }


def deepfake_body(score: float, threshold: float) -> dict[str, Any]:
    fake = score >= threshold
    return {
        "deepfake_result": {
            "deepfake_score": round(score, 7),
            "is_deepfake": int(fake),
            "message": IS_DEEPFAKE if fake else NOT_DEEPFAKE,
        },
        "status": SUCCESS,
    }
