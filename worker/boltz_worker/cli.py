"""`boltz-worker populate|prepare|predict|design|filter|screen-prepare|screen-shard|screen-rank`: run one command, report through the termination message
and the exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from boltz_contract import (
    CONFIG_DIR,
    RUN_ADAPTER,
    RUN_FILE,
    TERMINATION_LOG,
    DesignRun,
    ErrorClass,
    ExitCode,
    FilterRun,
    PopulateRun,
    PredictRun,
    PrepareRun,
    RunSummary,
    ScreenPrepareRun,
    ScreenRankRun,
    ScreenShardRun,
    WorkerError,
)

log = logging.getLogger("boltz_worker")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_output()
    termination_log = Path(args.termination_log)
    try:
        run = load_run(Path(args.run), args.command)
        summary = _COMMANDS[args.command](run, Path(args.run))
    except WorkerError as e:
        log.error("%s: %s", e.error_class.value, e.message)
        failure = RunSummary(ok=False, error_class=e.error_class, message=e.message)
        write_termination_message(termination_log, failure)
        return int(e.exit_code)
    except Exception as e:  # noqa: BLE001 (the last line of defence: report, never die silently)
        log.exception("internal error")
        message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        failure = RunSummary(ok=False, error_class=ErrorClass.INTERNAL, message=message)
        write_termination_message(termination_log, failure)
        return int(ExitCode.RETRYABLE)
    write_termination_message(termination_log, summary)
    return int(ExitCode.OK)


def load_run(
    path: Path, command: str
) -> PopulateRun | PrepareRun | PredictRun | DesignRun | FilterRun | ScreenPrepareRun | ScreenShardRun | ScreenRankRun:
    try:
        run = RUN_ADAPTER.validate_json(path.read_bytes())
    except OSError as e:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"cannot read {path}: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkerError(ErrorClass.INVALID_INPUT, f"{path} is not a valid run: {where}: {first['msg']}") from e
    if run.kind != command:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"{path} describes a {run.kind} run, not {command}")
    return run


def write_termination_message(path: Path, summary: RunSummary) -> None:
    text = summary.to_termination_message()
    try:
        path.write_text(text)
    except OSError as e:  # e.g. run by hand without /dev/termination-log: the exit code still tells
        log.warning("cannot write the termination message to %s: %s", path, e)
    print(text, flush=True)  # the summary also ends the log, for whoever reads it there


def _populate(run: PopulateRun, _run_path: Path) -> RunSummary:
    from boltz_worker.model_cache.populate import populate

    return populate(run)


def _prepare(run: PrepareRun, run_path: Path) -> RunSummary:
    from boltz_worker.prepare.prepare import prepare

    return prepare(run, config_dir=run_path.parent)  # the input and its files sit beside run.json


def _predict(run: PredictRun, run_path: Path) -> RunSummary:
    from boltz_worker.boltz_runs.predict import predict

    return predict(run, config_dir=run_path.parent)  # the input files sit beside run.json


def _design(run: DesignRun, run_path: Path) -> RunSummary:
    from boltz_worker.boltzgen_runs.design import design

    return design(run, config_dir=run_path.parent)  # the design spec (and files it names) sit beside run.json


def _filter(run: FilterRun, run_path: Path) -> RunSummary:
    from boltz_worker.boltzgen_runs.filter import filter_designs

    return filter_designs(run, config_dir=run_path.parent)


def _screen_prepare(run: ScreenPrepareRun, run_path: Path) -> RunSummary:
    from boltz_worker.screen_runs.screen_prepare import screen_prepare

    return screen_prepare(run, config_dir=run_path.parent)  # the target and library files sit beside run.json


def _screen_shard(run: ScreenShardRun, run_path: Path) -> RunSummary:
    from boltz_worker.screen_runs.screen_shard import screen_shard

    return screen_shard(run, config_dir=run_path.parent)


def _screen_rank(run: ScreenRankRun, _run_path: Path) -> RunSummary:
    from boltz_worker.screen_runs.screen_rank import screen_rank

    return screen_rank(run)


_COMMANDS: dict[str, Callable[..., RunSummary]] = {
    "populate": _populate,
    "prepare": _prepare,
    "predict": _predict,
    "design": _design,
    "filter": _filter,
    "screen-prepare": _screen_prepare,
    "screen-shard": _screen_shard,
    "screen-rank": _screen_rank,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boltz-worker", description=__doc__)
    parser.add_argument("command", choices=sorted(_COMMANDS))
    parser.add_argument("--run", default=f"{CONFIG_DIR}/{RUN_FILE}", help="run.json (default: %(default)s)")
    parser.add_argument(
        "--termination-log", default=TERMINATION_LOG, help="where the summary goes (default: %(default)s)"
    )
    return parser


def _configure_output() -> None:
    # Line-buffered, so `kubectl logs -f` shows progress as it happens rather than at exit.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
