"""The playbook curator: distils what worked from findings and ranks mutation kinds."""

from playbook.priors import KindStats, guidance_lines, kind_stats, kind_weights

__all__ = ["KindStats", "guidance_lines", "kind_stats", "kind_weights"]
