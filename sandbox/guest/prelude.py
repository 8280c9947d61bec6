"""Guest prelude (runs inside the sandbox before either phase): imports from known files only.

The host prepends `SWARM_CONFIG = {...}` and appends one phase's code.
"""

import json
import sys

# The frozen bootstrap is loaded already; importing importlib.abc/util would cost ~8M fuel.
import _frozen_importlib_external as _external

MARKER = "\x1eswarm-result "
EXIT_INVALID_OUTPUT = 3


class _KnownFiles:
    """Maps module names to known paths: guests cannot list directories."""

    def __init__(self, files):
        self.files = files

    def find_spec(self, name, path=None, target=None):
        location = self.files.get(name)
        if location is None:
            return None
        return _external.spec_from_file_location(name, location)


def _install_finder(config):
    sys.meta_path.insert(0, _KnownFiles(config["files"]))
    sys.path[:] = [entry for entry in sys.path if entry.endswith(".zip")]
