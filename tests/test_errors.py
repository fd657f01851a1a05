"""One error base class, one CLI wrapper, one exit-status convention for every entry point."""

from __future__ import annotations

import pytest

from rhmnet.config import ConfigError
from rhmnet.data.io import DatasetError
from rhmnet.engine.distributed import LaunchError
from rhmnet.engine.trainer import NonFiniteLossError
from rhmnet.errors import RHMNetError, run_cli
from rhmnet.evaluation.davis_scoring import EvaluationError
from rhmnet.guards import DeviceError, OutputExistsError, UnsafeNameError
from rhmnet.inference import InferenceError
from rhmnet.model_io import CheckpointError


@pytest.mark.parametrize(
    "error",
    [ConfigError, DatasetError, CheckpointError, InferenceError, EvaluationError, DeviceError, OutputExistsError,
     UnsafeNameError, LaunchError, NonFiniteLossError],
)
def test_user_errors_share_one_base(error: type[Exception]) -> None:
    assert issubclass(error, RHMNetError)


def _raising(exc: BaseException):
    def main(argv):
        raise exc

    return main


def test_run_cli_reports_user_errors_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_raising(ConfigError("unknown config key: TRAIN.X"))) == 2
    assert capsys.readouterr().err == "error: unknown config key: TRAIN.X\n"
    assert run_cli(_raising(NonFiniteLossError("non-finite loss at iteration 3"))) == 1  # the run failed
    assert run_cli(_raising(FileNotFoundError("checkpoint not found: x.pth"))) == 2
    assert run_cli(_raising(KeyboardInterrupt())) == 130
    assert run_cli(lambda argv: 0) == 0


def test_run_cli_lets_bugs_keep_their_traceback() -> None:
    """A plain ValueError (torch reports some programming errors that way) is not dressed up as bad input."""
    with pytest.raises(ValueError, match="shape mismatch"):
        run_cli(_raising(ValueError("shape mismatch")))
