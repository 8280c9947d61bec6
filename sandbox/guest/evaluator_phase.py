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
    # The same seed draws the same inputs the strategy saw, for the evaluator's reference.
    inputs = _inputs(config)
    module = __import__(config["module"])
    report = module.evaluate(output, config["public_dir"], config["private_dir"], *inputs)
    out = sys.stdout
    out.write(MARKER + json.dumps(report, allow_nan=True, default=repr) + "\n")
    out.flush()
    return EXIT_DONE


raise SystemExit(_main(SWARM_CONFIG))
