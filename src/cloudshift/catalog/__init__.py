"""One catalogue of prices, regions and instance types, with the source of every figure.

Both the migration planner (``cost/``) and the platform assessment (``assess/``) read it:

- :mod:`~cloudshift.catalog.regions`: the one :class:`Region` type and ``provider:region``;
- :mod:`~cloudshift.catalog.records`: the typed rows (:class:`Source`, :class:`Figure`,
  instance types, storage rates, egress, throughput, limits, databases, SLAs, ...);
- :mod:`~cloudshift.catalog.load`: :func:`load_catalog`, read once, lazily; ``--data`` files
  and the prices ``cloudshift prices update`` fetched lie over the packaged tables;
- :mod:`~cloudshift.catalog.update`: ``cloudshift prices update``;
- ``data/``: the tables and ``PROVENANCE.md`` (where each table comes from, and its limits).

It imports nothing of cloudshift but ``core``.
"""
