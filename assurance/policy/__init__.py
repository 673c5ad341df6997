"""Policy as code: the typed policy, risk tiers and the recommendation rule."""
