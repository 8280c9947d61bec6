"""The `swarm` command line: the only code that prints for humans and picks exit codes."""

from node.cli.main import app, main

__all__ = ["app", "main"]
