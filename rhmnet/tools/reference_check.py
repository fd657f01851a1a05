"""Run our implementation on the inputs of a reference file and compare with the authors' outputs.

    python -m rhmnet.tools.reference_check --checkpoint CKPT --reference REF --out OUT.pt

Only the inputs of REF are read to compute; OUT.pt gets our outputs in the same structure and names.
When REF also holds the authors' outputs, a table of differences is printed and the exit status is 1
if any exceeds the tolerances of the reference README (probabilities: max |diff| <= 1e-4; losses:
relative <= 1e-4, consistency <= 1e-2; gradients: relative L2 <= 1e-3; logits, which the README does
not cover, are held to max |diff| <= 1e-3).

OUT.pt must not exist unless ``--overwrite`` is given, and may never be the reference or the checkpoint
(nor a symbolic link); it is written to a temporary file and moved into place.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import TestConfig
from rhmnet.engine.step import forward_and_losses
from rhmnet.errors import run_cli
from rhmnet.guards import OutputExistsError, replace_file
from rhmnet.inference import FrameResult, VideoSegmenter
from rhmnet.inference.driver import segment_video
from rhmnet.inference.frame_io import FrameSource, VideoFrame
from rhmnet.model import RHMNet
from rhmnet.model_io import author_to_ours, load_model

PROB_TOL = 1e-4
LOGIT_TOL = 1e-3
LOSS_TOL = 1e-4
CONSISTENCY_TOL = 1e-2
GRAD_TOL = 1e-3
# the reference file uses the authors' name for the reliable-region focal loss
LOSS_NAMES = {"partial_ce": "partial_ce", "smoothness": "smoothness", "consistency": "consistency",
              "scribble_focal": "reliable_focal", "total": "total"}


def _batch_from_reference(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's training inputs in our batch layout (its scribbles serve as labels and memory)."""
    return {
        "images": inputs["images"].float(),
        "gray": inputs["gray"].float(),
        "scribbles": inputs["scribble_labels"],
        "memory_scribbles": inputs["scribble_labels"],
        "ds_scribbles": inputs["ds_scribble_labels"].float(),
        "ignore_regions": inputs["ignore_regions"].float(),
        "num_objects": inputs["num_objects"],
    }


def run_training_reference(model: RHMNet, inputs: dict[str, torch.Tensor], grad_names: list[str]) -> dict[str, Any]:
    """Training forward (eval mode: no dropout), reversed pass, losses and selected gradients."""
    model.eval()
    model.zero_grad(set_to_none=True)
    terms, out, reverse = forward_and_losses(model, _batch_from_reference(inputs), model.cfg.TRAIN.LOSS)
    terms.total.backward()
    params = dict(model.named_parameters())
    missing = [n for n in grad_names if author_to_ours(n) not in params]
    if missing:
        raise KeyError(f"reference lists gradients of unknown parameters: {missing}")
    grads = {}
    for name in grad_names:
        grad = params[author_to_ours(name)].grad
        grads[name] = torch.zeros_like(params[author_to_ours(name)]) if grad is None else grad.detach().clone()
    detach = lambda frames: [[t.detach() for t in layers] for layers in frames]  # noqa: E731
    train_outputs = {
        "multi_pred_prob": detach(out.mask_probs),
        "multi_pred_logit": detach(out.mask_logits),
        "multi_scribble_prob": [t.detach() for t in out.reliable_probs],
        "binary_scribble_logit": [t.detach() for t in out.reliable_logits],
        "valid": out.valid.detach(),
    }
    if reverse is not None:
        train_outputs["backward_multi_pred_prob"] = detach(reverse.mask_probs[::-1])
    cfg = model.cfg.TRAIN.LOSS
    values = terms.as_floats()
    losses: dict[str, Any] = {author: torch.tensor(values[ours]) for author, ours in LOSS_NAMES.items()}
    losses["weights"] = {
        "partial_ce": cfg.MASK.WEIGHT,
        "bg_weight": cfg.MASK.BG_WEIGHT,
        "smoothness": cfg.SMOOTH.WEIGHT,
        "smooth_alpha": cfg.SMOOTH.ALPHA,
        "consistency": cfg.CONSISTENCY.WEIGHT,
        "scribble_focal": cfg.SCRIBBLE_LOSS.WEIGHT,
        "focal_alpha": cfg.SCRIBBLE_LOSS.ALPHA,
    }
    model.zero_grad(set_to_none=True)
    return {"train_outputs": train_outputs, "train_losses": losses, "train_grads": grads}


def run_video_reference(model: RHMNet, video: dict[str, Any]) -> dict[str, Any]:
    """Streaming inference over a reference video: initialise on frame 0, then step every frame."""
    settings = TestConfig(**video["test"])
    segmenter = VideoSegmenter(model, settings)
    channels = list(video["channels"])
    probs, reliable = [], []

    def keep(_frame: VideoFrame, result: FrameResult) -> None:
        probs.append(result.full_probs[channels])
        reliable.append(result.full_reliable[channels])

    frames = FrameSource.from_arrays(list(video["frames_uint8"].numpy()))
    segment_video(segmenter, frames, video["scribble_labels"].numpy(), num_objects=int(video["num_objects"]),
                  on_frame=keep, with_reliable=True)
    inputs = {k: video[k] for k in ("frames_uint8", "scribble_labels", "num_objects", "test", "channels")}
    return {**inputs, "multi_pred_prob": torch.stack(probs), "multi_scribble_prob": torch.stack(reliable)}


@dataclass
class Row:
    name: str
    value: float
    tolerance: float
    kind: str

    @property
    def ok(self) -> bool:
        return self.value <= self.tolerance


def _max_abs(ours: Any, ref: Any) -> float:
    if isinstance(ours, (list, tuple)):
        return max(_max_abs(o, r) for o, r in zip(ours, ref))
    return float((ours.float() - ref.float()).abs().max())


def compare(ours: dict[str, Any], ref: dict[str, Any]) -> list[Row]:
    """Differences between our outputs and the reference's, each with its tolerance."""
    rows: list[Row] = []
    if "train_outputs" in ref and "train_outputs" in ours:
        for key, value in ref["train_outputs"].items():
            if value is None:  # the format allows inputs without expected outputs
                continue
            if key not in ours["train_outputs"]:
                rows.append(Row(f"train_outputs.{key} (missing)", float("inf"), 0.0, "missing"))
                continue
            tol, kind = (LOGIT_TOL, "max|diff|") if "logit" in key else (PROB_TOL, "max|diff|")
            rows.append(Row(f"train_outputs.{key}", _max_abs(ours["train_outputs"][key], value), tol, kind))
    if "train_losses" in ref and "train_losses" in ours:
        for key in LOSS_NAMES:
            if ref["train_losses"].get(key) is not None:
                r, o = float(ref["train_losses"][key]), float(ours["train_losses"][key])
                tol = CONSISTENCY_TOL if key == "consistency" else LOSS_TOL
                rows.append(Row(f"train_losses.{key}", abs(o - r) / max(abs(r), 1e-12), tol, "relative"))
    if isinstance(ref.get("train_grads"), dict) and "train_grads" in ours:
        for key, value in ref["train_grads"].items():
            if value is None:  # a gradient name listed without its expected value
                continue
            g = ours["train_grads"][key].double()
            err = float((g - value.double()).norm() / value.double().norm().clamp_min(1e-30))
            rows.append(Row(f"train_grads.{key}", err, GRAD_TOL, "rel. L2"))
    for key in sorted(k for k in ref if k.startswith("video")):
        for out_key in ("multi_pred_prob", "multi_scribble_prob"):
            if ref[key].get(out_key) is not None and key in ours:
                rows.append(
                    Row(f"{key}.{out_key}", _max_abs(ours[key][out_key], ref[key][out_key]), PROB_TOL, "max|diff|")
                )
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    print(f"{'output':<{width}}  {'measure':<9}  {'difference':>11}  {'tolerance':>9}  ok")
    for r in rows:
        print(f"{r.name:<{width}}  {r.kind:<9}  {r.value:11.3e}  {r.tolerance:9.1e}  {'yes' if r.ok else 'NO'}")


def run(checkpoint: Path, reference: Path, config: str = "video_training") -> tuple[dict[str, Any], dict[str, Any]]:
    """Compute our outputs for every input set of ``reference``; returns ``(ours, reference)``."""
    if not reference.is_file():
        raise FileNotFoundError(f"reference file not found: {reference}")
    try:  # weights only: a reference file may come from elsewhere, and a full unpickle can run its code
        ref = torch.load(reference, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"{reference}: not a weights-only reference file ({type(exc).__name__}: {first})") from None
    if not isinstance(ref, dict):
        raise ValueError(f"{reference}: expected a dict of inputs and outputs, got {type(ref).__name__}")
    model = load_model(checkpoint, ref.get("config", config) if isinstance(ref.get("config"), str) else config)
    ours: dict[str, Any] = {"config": model.cfg.NAME}
    if "train_inputs" in ref:
        grad_names = list(ref.get("train_grads") or [])  # a dict of expected values or just names
        ours["train_inputs"] = ref["train_inputs"]
        ours.update(run_training_reference(model, ref["train_inputs"], grad_names))
    with torch.no_grad():
        for key in sorted(k for k in ref if k.startswith("video")):
            ours[key] = run_video_reference(model, ref[key])
    return ours, ref


def check_out_file(out: Path, overwrite: bool, inputs: dict[str, Path]) -> None:
    """``--out`` is never one of the inputs, nor a symbolic link or a folder; an existing file needs
    ``overwrite``."""
    for option_name, path in inputs.items():
        if path.exists() and out.exists() and out.resolve() == path.resolve():
            raise OutputExistsError(f"--out {out} is the {option_name} file; choose another output file")
    if out.is_symlink():
        raise OutputExistsError(f"--out {out} is a symbolic link; refusing to write through it")
    if out.is_dir():
        raise OutputExistsError(f"--out {out} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"--out {out} exists; pass --overwrite to replace it, or choose another file")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="authors' or our checkpoint")
    parser.add_argument("--reference", type=Path, required=True, help="reference_outputs.pt-style file")
    parser.add_argument("--out", type=Path, required=True, help="where to save our outputs")
    parser.add_argument("--config", default="video_training", help="config when the reference names none")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    check_out_file(args.out, args.overwrite, {"--reference": args.reference, "--checkpoint": args.checkpoint})
    try:
        ours, ref = run(args.checkpoint, args.reference, args.config)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    replace_file(args.out, lambda path: torch.save(ours, path))
    print(f"saved our outputs to {args.out}")
    rows = compare(ours, ref)
    if not rows:
        print("the reference holds no expected outputs: nothing to compare")
        return 0
    print_table(rows)
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} of {len(rows)} within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
