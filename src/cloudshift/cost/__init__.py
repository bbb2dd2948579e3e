"""Migration cost and time planning: the model, the planner, estimate vs actual.

``cloudshift.cost.planner.plan`` is the entry point; see docs/planning.md. Prices, regions and
VM types come from the one catalogue (:mod:`cloudshift.catalog`) the assessment reads too;
:mod:`~cloudshift.cost.prices` hands them out as citable, overridable prices.
"""
