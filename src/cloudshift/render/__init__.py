"""The rendering layer: what a person or a script sees of any kind's events and results.

Progress bars and plain lines on stderr, JSON Lines on stdout, HTML reports. The CLI modules
only parse arguments, call the API and hand events and results to this layer.

Shared by every kind: :mod:`progress` (the event sink: bar, plain lines, JSON Lines, with a
kind's ``Lines``), :mod:`jsonl`, :mod:`views` (how ``cloudshift resume`` shows a job of any
kind), :mod:`jobs` (``cloudshift jobs``), :mod:`help` (help text that wraps at the terminal).
Each kind's lines and summaries: :mod:`objects`, :mod:`db`, :mod:`plan`, :mod:`assess`.
"""
