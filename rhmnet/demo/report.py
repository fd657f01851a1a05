"""The demo's report: ``results.md`` (the J&F table, the phases' times, what the model was trained on) and
``results.json`` (the same rows and facts, machine-readable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from rhmnet.demo.data import HeldOut
from rhmnet.demo.scoring import Scores


@dataclass
class DemoResults:
    """What one demo run measured: the J&F rows, each phase's seconds, the run's minutes, the training's
    iterations and rate, the real roots it trained on and the held-out sets."""

    rows: list[Scores]
    phases: dict[str, float]
    minutes: float
    iterations: int
    iters_per_second: float
    davis_roots: list[Path]
    held_out: Sequence[HeldOut] = ()

    def report(self) -> str:
        """``results.md``: the J&F table, the phases' times and what the model was trained on (and, with
        held-out sets, which sequences it never saw)."""
        table = "\n".join(
            ["| evaluated on | method | videos | J&F | J | F |", "|---|---|---|---|---|---|",
             *(r.row() for r in self.rows)]
        )
        timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.phases.items())
        parts = {h.root: f" (training part: the {len(h.sequences)} sequences {', '.join(h.sequences)} held out)"
                 for h in self.held_out}
        trained_on = "synthetic videos" + "".join(f" + {root.name}{parts.get(root, '')}" for root in self.davis_roots)
        shown = {r.evaluated_on for r in self.rows}
        unseen = "".join(f"Rows '{name}' are videos the model never saw.\n"
                         for h in self.held_out for name in (h.single_set(), h.multi_set()) if name in shown)
        return (
            f"# RHMNet demo\n\n{table}\n\n{unseen}"
            f"Trained on {trained_on}: {self.iterations} iterations at {self.iters_per_second:.2f} it/s.\n"
            f"Total time: {self.minutes:.1f} min on {torch.get_num_threads()} CPU threads ({timing}).\n"
        )

    def write(self, out: Path) -> str:
        """``results.md`` (:meth:`report`, returned) and ``results.json`` in ``out``."""
        report = self.report()
        (out / "results.md").write_text(report)
        (out / "results.json").write_text(
            json.dumps(
                {
                    "rows": [asdict(r) for r in self.rows],
                    "phases_seconds": self.phases,
                    "minutes": self.minutes,
                    "iterations": self.iterations,
                    "iterations_per_second": self.iters_per_second,
                    "threads": torch.get_num_threads(),
                    "training_roots": [str(r) for r in self.davis_roots],
                    "held_out": {str(h.root): h.sequences for h in self.held_out},
                },
                indent=2,
            )
        )
        return report
