"""Guest prelude (runs inside the sandbox before either phase): imports from known files only.

The host appends `SWARM_CONFIG = {...}` and one phase's code. Kept small and class-free: the
guest compiles it on every run and compiling costs fuel.
"""

import json
import sys
import types

# The frozen bootstrap is loaded already; importing importlib.abc/util would cost ~8M fuel.
import _frozen_importlib_external as _external

MARKER = "\x1eswarm-result "
EXIT_INVALID_OUTPUT = 3
# Only the driver returning from the turn can end with this code: WASI's proc_exit (os._exit)
# refuses codes of 126 and more, so the host knows the driver, not the strategy, finished.
EXIT_DONE = 208


def _install_finder(config):
    """Map module names to known paths: guests cannot list directories."""
    files = config["files"]

    def find_spec(name, path=None, target=None):
        location = files.get(name)
        return None if location is None else _external.spec_from_file_location(name, location)

    sys.meta_path.insert(0, types.SimpleNamespace(find_spec=find_spec))
    sys.path[:] = [entry for entry in sys.path if entry.endswith(".zip")]


def _inputs(config):
    """The arguments after the public directory: this candidate's fresh inputs, drawn by the
    package's fixed generator from the host's seed (docs/experiment-package.md#fresh-inputs)."""
    generator = config.get("generator")
    if generator is None:
        return ()
    return (__import__(generator).generate(config["seed"], config["public_dir"]),)
