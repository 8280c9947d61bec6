"""Guest phase 1 (runs inside the sandbox): import the strategy, call its entry, emit the result.

The host prepends `SWARM_CONFIG = {...}`. Everything here is untrusted once the strategy runs:
the host treats this phase's output as data, measures its fuel itself, and takes a result only
from a turn that ends with EXIT_DONE, which the strategy cannot reach by exiting (see
docs/experiment-package.md#how-a-candidate-is-evaluated).
"""

def _main(config):
    _install_finder(config)
    # Taken before any strategy code runs: the handler below must run none of it (a replaced
    # sys.stderr, or a `write` set on the stream instance, could raise SystemExit(EXIT_DONE)
    # from there), so it calls the stream type's own method. json.dumps stays patchable:
    # whatever it runs, runs inside the try, and the result is the strategy's to choose anyway.
    out, err, code_of = sys.stdout, sys.stderr, SystemExit.code.__get__
    write = type(err).write
    name = config["entry"]  # a str from the host; `config` itself stays mutable by the strategy
    sys.stdout = sys.stderr  # the strategy's own prints are diagnostics, not output
    # Drawn before any strategy code runs, so the strategy cannot choose its own inputs.
    arguments = (config["public_dir"], *_inputs(config))
    try:
        module = __import__(config["module"])
        entry = getattr(module, name, None)
        if not callable(entry):
            err.write(f"the strategy defines no callable {name!r}\n")
            return EXIT_INVALID_OUTPUT
        result = entry(*arguments)
        try:
            text = json.dumps(result, allow_nan=True, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as error:
            err.write(f"the strategy's result is not JSON-serialisable: {error}\n")
            return EXIT_INVALID_OUTPUT
        out.write(MARKER + text + "\n")
        out.flush()
    except SystemExit as error:
        # Exiting skips the driver's own work, and a result line the strategy wrote itself
        # would stand: a result counts only when the entry point returns it. The code is read
        # from the exception's slot: a subclass's `code` property would run strategy code here.
        code = code_of(error)
        code = 0 if code is None else code if type(code) is int else 1
        write(
            err,
            f"no result: the strategy exited (exit code {code}) instead of returning from "
            f"{name}()\n"
        )
        if code == 0:
            return EXIT_INVALID_OUTPUT
        return code if 0 < code < 126 else 1
    return EXIT_DONE


raise SystemExit(_main(SWARM_CONFIG))
