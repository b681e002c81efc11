"""The one way facecheck opens an ONNX file: on the CPU, with a fixed number of threads.
Below the model classes and the face detector, which both run on it."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def cpu_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # ONNX Runtime ignores OMP_NUM_THREADS and takes every core unless told.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle threads would spin-wait for the next batch and burn the cores the front workers
    # need (docs/performance.md, "Runner settings").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
