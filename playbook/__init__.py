"""The playbook curator: distils what worked from findings and ranks mutation kinds."""

from playbook.priors import KindStats, kind_stats, kind_weights

__all__ = ["KindStats", "kind_stats", "kind_weights"]
