"""The frame every kind of move plugs into: its spec, its journal, its events, its result.

- :mod:`spec`: ``JobSpec(kind, params, options)``; the params name the job, the options are
  compared when it resumes;
- :mod:`journal`: the SQLite journal base (job facts, runs, settings) each kind extends;
- :mod:`events`: the one ``Event`` type every kind emits, with one JSON shape;
- :mod:`results`: the interface of every result (``ok``, ``exit_code``, ``to_dict()``);
- :mod:`registry`: what a kind tells ``cloudshift jobs``, ``resume`` and ``report``;
- :mod:`executor`: where work runs (a thread pool today), so another executor can take it.
"""
