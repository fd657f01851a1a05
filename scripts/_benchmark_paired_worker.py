"""The worker of ``scripts/benchmark_paired.py``: one code version, driven over stdin/stdout (JSON lines).

Not a command: ``benchmark_paired.py`` starts it with the code version to time first on ``PYTHONPATH``, so
it imports only what every version of ``rhmnet`` has (``load_model``, ``load_config``, ``build_model``,
``VideoSegmenter``); the frames come from the parent as ``.npy`` files. Commands: ``model`` (build it, reply
with where ``rhmnet`` came from and a weight checksum), ``video`` (load frames, initialise), ``step`` (time
one frame, optionally dumping its outputs), ``quit``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def build(checkpoint: str | None, overrides: list[str]) -> Any:
    """The model: ``checkpoint``, or a randomly initialised ``video_training`` model from seed 0."""
    import torch

    import rhmnet

    if checkpoint:
        return rhmnet.load_model(checkpoint, "video_training", overrides=overrides)
    torch.manual_seed(0)
    cfg = rhmnet.load_config("video_training", ["MODEL.BACKBONE.PRETRAINED=false", *overrides])
    return rhmnet.build_model(cfg, torch.device("cpu"))


def serve() -> None:
    import torch

    import rhmnet
    from rhmnet.inference import VideoSegmenter

    model = video = segmenter = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        if cmd["cmd"] == "model":
            model = build(cmd["checkpoint"], cmd["overrides"])
            checksum = float(sum(p.double().sum() for p in model.state_dict().values() if p.is_floating_point()))
            reply({"rhmnet": rhmnet.__file__, "torch": torch.__version__, "weights": checksum})
        elif cmd["cmd"] == "video":
            torch.set_num_threads(cmd["threads"])
            video, scribble = np.load(cmd["video"]), np.load(cmd["scribble"])
            segmenter = VideoSegmenter(model, model.cfg.TEST)
            segmenter.initialize(video[0], scribble)
            _ = segmenter.step(video[0]).labels
            reply({"frames": len(video)})
        elif cmd["cmd"] == "step":
            frame = video[cmd["index"]]
            wall, cpu = time.perf_counter(), time.process_time()
            result = segmenter.step(frame)
            labels = result.labels
            out = {"ms": 1000 * (time.perf_counter() - wall), "cpu_ms": 1000 * (time.process_time() - cpu)}
            if cmd.get("dump"):
                np.save(cmd["dump"] + ".probs.npy", result.probs.float().numpy())
                np.save(cmd["dump"] + ".labels.npy", labels)
            reply(out)


if __name__ == "__main__":
    if sys.argv[1:]:  # it takes no options: say what it is
        print(__doc__)
        sys.exit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
    serve()
