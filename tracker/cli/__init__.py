"""The `newsdesk` command line: the tracker's commands, and the plugins other packages add.

`main` parses and runs one command (`tracker.cli.main`); `errors` decides how a failure ends
(one line, an exit code that says whose fault it was); `options` holds the options several
commands share (tracking URI, experiment) and the help format. The tracker's own commands are
`tracking_commands` (sync, compare, promote, predict, ui) and `server_command`. The training
commands come from `trainers.cli` through the `newsdesk.commands` entry-point group.
"""

from tracker.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
