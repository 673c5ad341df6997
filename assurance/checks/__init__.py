"""The analyses: one module per kind of evidence, each a pure `run(inputs) -> Section`."""
