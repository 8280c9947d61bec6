"""Guest phase 2 (runs inside the sandbox): score phase 1's output with the fixed evaluator.

A fresh interpreter: no strategy code has run here, so nothing can have patched it.
"""

def _main(config):
    _install_finder(config)
    with open(config["output_path"], "rb") as stream:
        raw = stream.read()
    try:
        output = json.loads(raw)
    except (ValueError, RecursionError) as error:
        sys.stderr.write(f"the strategy's output is not valid JSON: {error}\n")
        return EXIT_INVALID_OUTPUT
    module = __import__(config["module"])
    report = module.evaluate(output, config["public_dir"], config["private_dir"])
    out = sys.stdout
    out.write(MARKER + json.dumps(report, allow_nan=True, default=repr) + "\n")
    out.flush()
    return 0


raise SystemExit(_main(SWARM_CONFIG))
