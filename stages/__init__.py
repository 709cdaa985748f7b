"""Thin entry points, one per kind of dvc.yaml stage: `python -m stages.<stage> <item>`."""

import os

# TensorFlow's C++ start-up chatter buries the stage's own output in `dvc repro` logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
