"""The `t2igan` command. A thin layer: each subcommand lives in its own module and calls the library.

Subcommands are imported lazily, so `t2igan --help` is fast and one area's optional extra never breaks another's.
Errors from bad input (`T2IError`) print as one line and exit with status 2.
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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="t2igan")
def cli() -> None:
    """t2igan — text-to-image GANs (GAN-INT-CLS, StackGAN, StackGAN++) that train, sample and evaluate.

    \b
    Quick start:
      t2igan sample "this flower has five pink petals and a yellow center" --out pink.png   # the shipped model
      t2igan demo --out runs/demo                    # synthetic flowers end to end on a CPU, ~10 minutes
      t2igan train --data FOLDER --out runs/mine     # your own captioned images in one command
    """


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
