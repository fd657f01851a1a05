"""Where the time of one streaming frame goes, by module, at 854x480 with 1, 2 and 3 objects.

    python scripts/profile_frame.py [--frames 12] [--objects 1 2 3] [--threads 2] [--config NAME]
        [--checkpoint CKPT] [KEY=VALUE ...]

Wraps the model's building blocks with wall-clock timers (exclusive time: a block's own time without the
blocks it calls) and steps a synthetic video (the frames and scribble of ``scripts/benchmark_model.py``,
from :mod:`rhmnet.tools.benchmarking`).
Prints the median over the timed frames (frame 0 and the first ``--skip`` steps are not counted) of each
part's milliseconds per frame, and the whole step. Parts:

- backbone: the frame encoder (ResNet to layer3);
- bottleneck + positions: bottleneck convolution, group norm, position table (the rest of ``encode``);
- head adapters: the heads' 1x1 adapters of the backbone features (once per frame);
- matching: decoder layers (self-attention, cross-attention to memory, feed-forward);
- memory read: keys/values of memory entries (projection of new entries, concatenation buffers);
- heads: reliable-region and mask heads (3x3 convolutions up to stride 4);
- upsampling: mask logits to full resolution (foreground probability), crop and resize to the frame;
- aggregation: per-object probabilities to the used channels;
- memory update: labelled memory entries (attach) and the memory policy;
- label map: the argmax read by an evaluator (``FrameResult.labels``, host copy included);
- other: the rest of ``step`` (frame normalisation, Python glue).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

import rhmnet
import rhmnet.inference.session as session_module
import rhmnet.model.rhmnet as rhmnet_module
from rhmnet.cli_args import ArgumentParser
from rhmnet.inference import VideoSegmenter
from rhmnet.tools.benchmarking import synthetic_video

PARTS = [
    "backbone", "bottleneck + positions", "head adapters", "matching", "memory read", "heads", "upsampling",
    "aggregation", "memory update", "label map", "other",
]


class ExclusiveTimer:
    """Accumulates exclusive wall time per part; nested timed calls are subtracted from their caller."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [part, start, child seconds]

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            entry = [part, time.perf_counter(), 0.0]
            self._stack.append(entry)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                elapsed = time.perf_counter() - entry[1]
                self.totals[part] += elapsed - entry[2]
                if self._stack:
                    self._stack[-1][2] += elapsed

        return timed

    def take(self) -> dict[str, float]:
        out, self.totals = dict(self.totals), defaultdict(float)
        return out


def instrument(model: rhmnet.RHMNet, timer: ExclusiveTimer) -> None:
    """Replace the model's building blocks (on this instance and in the inference module) by timed ones."""
    model.backbone.forward = timer.wrap("backbone", model.backbone.forward)
    model.encode = timer.wrap("bottleneck + positions", model.encode)
    for head in [model.reliable_head, *model.mask_heads]:
        head.adapt = timer.wrap("head adapters", head.adapt)
        head.forward = timer.wrap("heads", head.forward)
    for layer in model.decoder:
        layer.self_block = timer.wrap("matching", layer.self_block)
        layer.cross_block = timer.wrap("matching", layer.cross_block)
        layer.cross_attn.project_query = timer.wrap("matching", layer.cross_attn.project_query)
    model.decode = timer.wrap("other", model.decode)
    model._aggregate = timer.wrap("aggregation", model._aggregate)
    model._attach_prediction = timer.wrap("memory update", model._attach_prediction)
    model.mask_entries = timer.wrap("memory update", model.mask_entries)
    rhmnet_module.foreground_probability = timer.wrap("upsampling", rhmnet_module.foreground_probability)
    if hasattr(rhmnet_module, "adapt_heads"):  # the heads' adapters run together (not through head.adapt)
        rhmnet_module.adapt_heads = timer.wrap("head adapters", rhmnet_module.adapt_heads)
    rhmnet.model.memory.MemoryBank.key_value = timer.wrap("memory read", rhmnet.model.memory.MemoryBank.key_value)
    rhmnet.model.memory.MemoryBank.update = timer.wrap("memory update", rhmnet.model.memory.MemoryBank.update)
    session_module.crop = timer.wrap("upsampling", session_module.crop)
    session_module.VideoSegmenter._to_frame_size = timer.wrap(
        "upsampling", session_module.VideoSegmenter._to_frame_size
    )


def profile(model: rhmnet.RHMNet, objects: int, frames: int, skip: int) -> dict[str, float]:
    """Median ms per frame of each part (and ``total``) over the timed frames."""
    timer = ExclusiveTimer()
    instrument(model, timer)  # before the segmenter takes hold of model.encode
    segmenter = VideoSegmenter(model, model.cfg.TEST)
    video, scribble = synthetic_video(frames, objects)
    segmenter.initialize(video[0], scribble)
    per_frame: list[dict[str, float]] = []
    for index, frame in enumerate(video):
        timer.take()
        start = time.perf_counter()
        result = timer.wrap("other", segmenter.step)(frame)
        timer.wrap("label map", lambda r=result: r.labels)()
        total = time.perf_counter() - start
        if index > skip:
            parts = timer.take()
            parts["total"] = total
            per_frame.append(parts)
    return {part: 1000 * statistics.median(f.get(part, 0.0) for f in per_frame) for part in [*PARTS, "total"]}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12, help="frames per video, frame 0 included")
    parser.add_argument("--skip", type=int, default=1, help="untimed steps after frame 0 (warm-up)")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", default="video_training")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    columns = {}
    for objects in args.objects:
        # a fresh model per object count: instrumenting wraps its methods once
        if args.checkpoint:
            model = rhmnet.load_model(args.checkpoint, args.config, overrides=args.overrides)
        else:
            torch.manual_seed(0)
            cfg = rhmnet.load_config(args.config, ["MODEL.BACKBONE.PRETRAINED=false", *args.overrides])
            model = rhmnet.build_model(cfg, torch.device("cpu"))
        columns[objects] = profile(model, objects, args.frames, args.skip)
    print(f"ms per frame by part (median over frames {args.skip + 1}..{args.frames - 1}), 854x480, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| part | " + " | ".join(f"{n} object{'s' if n > 1 else ''}" for n in args.objects) + " |")
    print("|---|" + "---|" * len(args.objects))
    for part in [*PARTS, "total"]:
        print(f"| {part} | " + " | ".join(f"{columns[n][part]:.0f}" for n in args.objects) + " |")
    print("(parts are medians per part, so they need not add up to the median total exactly)")


if __name__ == "__main__":
    main()
