"""Publishing a problem: a chat model writes an experiment package from plain English (or a person
starts from the template), and dry runs in the sandbox decide whether it is fit to publish."""

from node.publish.poser import (
    PACKAGE_TEMPLATE,
    PoseConfig,
    Poser,
    PoseResult,
    ReplyError,
    parse_reply,
    write_package,
)
from node.publish.validate import DryRunFailed, Progress, Validation, dry_run, validate_problem

__all__ = [
    "PACKAGE_TEMPLATE",
    "DryRunFailed",
    "PoseConfig",
    "PoseResult",
    "Poser",
    "Progress",
    "ReplyError",
    "Validation",
    "dry_run",
    "parse_reply",
    "validate_problem",
    "write_package",
]
