"""The `t2igan` command. A thin layer: each subcommand lives in its own module and calls the library.

Subcommands are imported lazily, so `t2igan --help` is fast and one area's optional extra never breaks another's.
Errors from bad input (`T2IError`) print as one line and exit with status 2.

Logging is configured here, once: the library logs to the ``t2igan`` logger (``logging.getLogger(__name__)`` in each
module); this prints its records on stderr, one line each (``warning: …`` for warnings), above any progress bar.
``-q``/``--quiet`` keeps warnings and errors only and hides progress bars; ``-v``/``--verbose`` adds debug lines.
Both are accepted before the subcommand (``t2igan -q train …``) and after it (``t2igan train … -q``). What a
command exists to print (a table, a written path, a key) goes to stdout with ``click.echo``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys

import click

from t2igan import __version__
from t2igan.utils.errors import T2IError
from t2igan.utils.progress import set_progress_bars

# name → "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "convert": "t2igan.apps.cli_convert:convert",
    "data": "t2igan.apps.cli_data:data",
    "encode": "t2igan.apps.cli_encode:encode",
    "export": "t2igan.apps.cli_export:export",
    "serve": "t2igan.apps.serve:serve",
    "sample": "t2igan.apps.cli_sample:sample",
    "interpolate": "t2igan.apps.cli_sample:interpolate",
    "style": "t2igan.apps.cli_sample:style",
    "demo": "t2igan.apps.demo:demo",
    "evaluate": "t2igan.apps.cli_evaluate:evaluate",
    "evaluator": "t2igan.apps.cli_evaluate:evaluator",
    "rank": "t2igan.apps.rank:rank",
    "train": "t2igan.apps.cli_train:train",
}


_PREFIX = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class _CliHandler(logging.Handler):
    """One line per record on the current stderr, written above any active tqdm bar (``tqdm.write``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(_PREFIX.get(record.levelno, "") + record.getMessage(), file=sys.stderr)
        except Exception:
            self.handleError(record)


def configure_logging(verbosity: int = 0) -> None:
    """Route the ``t2igan`` logger to stderr: ``verbosity`` −1 = warnings only (and no progress bars), 0 = info,
    1 = debug. (Under torchrun, ranks other than 0 then keep warnings only: ``distributed.quiet_unless_main``.)"""
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    root = logging.getLogger("t2igan")
    for h in [h for h in root.handlers if isinstance(h, _CliHandler)]:
        root.removeHandler(h)
    root.addHandler(_CliHandler())
    root.setLevel(level)
    set_progress_bars(verbosity >= 0)


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    ctx.meta["t2igan.verbosity"] = -1 if param.name == "quiet" else 1
    configure_logging(ctx.meta["t2igan.verbosity"])


def _verbosity_options() -> list[click.Option]:
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Only warnings and errors; no progress bars.",
        ),
        click.Option(
            ["-v", "--verbose"], is_flag=True, expose_value=False, callback=_set_verbosity, help="Debug lines too."
        ),
    ]


def _add_verbosity(cmd: click.Command) -> click.Command:
    """Give ``cmd`` (and, for a group, each of its subcommands) ``-q``/``-v`` once."""
    if not any(isinstance(p, click.Option) and "--quiet" in p.opts for p in cmd.params):
        cmd.params.extend(_verbosity_options())
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _add_verbosity(sub)
    return cmd


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return _add_verbosity(getattr(importlib.import_module(module), attr))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="t2igan")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """t2igan — text-to-image GANs (GAN-INT-CLS, StackGAN, StackGAN++) that train, sample and evaluate.

    \b
    Quick start:
      t2igan sample "this flower has five pink petals and a yellow center" --out pink.png   # the shipped model
      t2igan demo --out runs/demo                    # synthetic flowers end to end on a CPU, ~10 minutes
      t2igan train --data FOLDER --out runs/mine     # your own captioned images in one command
    """
    configure_logging(ctx.meta.get("t2igan.verbosity", 0))  # -q/-v after the subcommand reconfigure it


_add_verbosity(cli)


def main(argv: list[str] | None = None) -> None:
    code = _run(argv)
    if _is_torchrun_worker():
        _hard_exit(code)
    if code:
        sys.exit(code)


def _run(argv: list[str] | None) -> int:
    """Run the CLI; the exit status (0 = success)."""
    try:
        cli.main(args=argv, prog_name="t2igan", standalone_mode=False)
    except T2IError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


def _is_torchrun_worker() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def _hard_exit(code: int) -> None:
    """Leave a torchrun worker without interpreter finalisation.

    After ``destroy_process_group`` a gloo worker thread may still be releasing its last work item (tensors owned by
    Python) when the interpreter shuts down; it then cannot take the GIL and the process aborts (SIGABRT, "terminate
    called without an active exception"), turning a finished run into a failed torchrun job. Every file the run
    writes is closed by now (checkpoints and exports are written atomically), so flush the streams and exit at once.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
