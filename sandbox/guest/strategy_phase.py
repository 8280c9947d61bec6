"""Guest phase 1 (runs inside the sandbox): import the strategy, call its entry, emit the result.

The host prepends `SWARM_CONFIG = {...}`. Everything here is untrusted once the strategy runs:
the host treats this phase's output as data and measures its fuel itself.
"""

def _main(config):
    _install_finder(config)
    out = sys.stdout
    sys.stdout = sys.stderr  # the strategy's own prints are diagnostics, not output
    module = __import__(config["module"])
    entry = getattr(module, config["entry"], None)
    if not callable(entry):
        sys.stderr.write(f"the strategy defines no callable {config['entry']!r}\n")
        return EXIT_INVALID_OUTPUT
    result = entry(config["public_dir"])
    try:
        text = json.dumps(result, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as error:
        sys.stderr.write(f"the strategy's result is not JSON-serialisable: {error}\n")
        return EXIT_INVALID_OUTPUT
    out.write(MARKER + text + "\n")
    out.flush()
    return 0


raise SystemExit(_main(SWARM_CONFIG))
