"""Guest phase 1 of a heuristic package (runs inside the sandbox): one instance per run.

The host prepends `SWARM_CONFIG = {...}`. With `instance` None this run is the host's count:
no strategy code is imported, the package's generator draws the instances and the harness may
weigh them (`weight(instance)`), and the result is the list of weights. Otherwise the package's
fixed harness drives the strategy's function over instance number `instance` and the result is
whatever `run(function, instance)` returns. The strategy shares this interpreter with the
harness, so nothing here is trusted once it runs: the evaluator re-checks every result in a
fresh interpreter (docs/experiment-package.md#heuristic-packages).
"""

def _main(config):
    _install_finder(config)
    out, err, code_of = sys.stdout, sys.stderr, SystemExit.code.__get__
    write = type(err).write
    name = config["entry"]
    index = config["instance"]
    sys.stdout = sys.stderr  # nothing but the result line reaches stdout
    # Drawn and weighed before any strategy code runs: the strategy chooses neither.
    instances = _inputs(config)[0]
    if not isinstance(instances, list) or not 0 < len(instances) <= config["max_instances"]:
        err.write(f"the generator must return a list of 1 to {config['max_instances']} "
                  "instances\n")
        return EXIT_INVALID_OUTPUT
    harness = __import__(config["harness"])
    if index is None:
        weigh = getattr(harness, "weight", None)
        weights = [1 if weigh is None else weigh(instance) for instance in instances]
        out.write(MARKER + json.dumps(weights) + "\n")
        out.flush()
        return EXIT_DONE
    instance = instances[index]
    try:
        module = __import__(config["module"])
        function = getattr(module, name, None)
        if not callable(function):
            err.write(f"the strategy defines no callable {name!r}\n")
            return EXIT_INVALID_OUTPUT
        result = harness.run(function, instance)
        try:
            text = json.dumps(result, allow_nan=True, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as error:
            err.write(f"the harness's result is not JSON-serialisable: {error}\n")
            return EXIT_INVALID_OUTPUT
        out.write(MARKER + text + "\n")
        out.flush()
    except SystemExit as error:
        code = code_of(error)
        code = 0 if code is None else code if type(code) is int else 1
        write(err, f"no result: the strategy exited (exit code {code})\n")
        if code == 0:
            return EXIT_INVALID_OUTPUT
        return code if 0 < code < 126 else 1
    return EXIT_DONE


raise SystemExit(_main(SWARM_CONFIG))
