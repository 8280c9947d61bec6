"""The node: loop, mutators, LLM clients, problem packages, store and the `swarm` CLI."""
