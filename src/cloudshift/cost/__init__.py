"""Migration cost and time planning: price tables with provenance, the model, the planner.

``cloudshift.cost.planner.plan`` is the entry point; see docs/planning.md.
"""
