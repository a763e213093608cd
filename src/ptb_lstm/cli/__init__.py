"""The ``ptb-lstm`` command: arguments, files and error messages; the work lives elsewhere.

One module per command (``cli/train.py`` for ``ptb-lstm train``, ...), each with its ``HELP``
line, ``DESCRIPTION`` and ``EPILOG`` (examples), ``add_arguments(parser)``, which declares the
command's flags, and ``run(args)``, which runs it and returns the exit status. Flags that
several commands share are declared once in ``cli/options.py``. A new command is a new module
and one line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ptb_lstm import __version__
from ptb_lstm.cli import options
from ptb_lstm.cli.options import formatter
from ptb_lstm.errors import UserError

# In the order --help lists them.
COMMANDS = (
    "data",
    "train",
    "evaluate",
    "generate",
    "score",
    "inspect",
    "look",
    "gradcheck",
    "agree",
    "bench",
    "plot",
)

EPILOG_MAIN = """\
examples:
  ptb-lstm data                          # find (or download) PTB and show its statistics
  ptb-lstm train --config small          # the paper's small model with the NumPy engine
  ptb-lstm train --config tiny --max-steps 50 --out runs/try
  ptb-lstm evaluate --checkpoint runs/try/model.npz --split test
  ptb-lstm generate --checkpoint runs/try/model.npz --prompt "the company" --words 30
  ptb-lstm score --checkpoint runs/try/model.npz --text "prices rose sharply ."
  ptb-lstm inspect runs/try/model.npz
  ptb-lstm look --checkpoint runs/try/model.npz --text "prices rose ." --out look/
  ptb-lstm gradcheck                     # back-propagation against finite differences
  ptb-lstm agree                         # every other engine against the NumPy engine
  ptb-lstm bench --engine numpy          # ms per step
  ptb-lstm plot runs/a runs/b --out curves.png   # learning curves of runs

PTB is looked for in --data-dir, then $PTB_DATA_DIR, then ~/.cache/ptb-lstm/ptb, and
downloaded there if it is in none of them.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptb-lstm",
        formatter_class=formatter,
        epilog=EPILOG_MAIN,
        description="Train and evaluate the LSTM language model of Zaremba et al. (2015) on the "
        "Penn Treebank with interchangeable engines: "
        f"{', '.join(options.engine_names())}.",
    )
    parser.add_argument("--version", action="version", version=f"ptb-lstm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"ptb_lstm.cli.{name}")
        command = commands.add_parser(
            name,
            formatter_class=formatter,
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
        )
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options.check_paths(args)
        return args.func(args)
    except UserError as error:
        print(f"ptb-lstm: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:
            raise
        # A path a command derived from the user's (a file inside --out, say) that the
        # system refused: the paths given are checked first (options.check_paths).
        from ptb_lstm.bounds import os_error, shown_path

        print(f"ptb-lstm: error: {os_error(error, shown_path(error.filename))}", file=sys.stderr)
        return 2
    except MemoryError as error:  # what the estimate before allocating (params.py) missed
        print(
            f"ptb-lstm: error: out of memory ({error or 'MemoryError'}); use a smaller "
            "model, batch size or number of steps",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("ptb-lstm: interrupted", file=sys.stderr)
        return 130
