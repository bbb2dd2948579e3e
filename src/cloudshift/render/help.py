"""Command help that wraps at the terminal's width.

Help comes from docstrings, whose lines break where the source's do; typer (with rich) keeps
those breaks inside a paragraph, so help read "... while it streams" / "and checked ...".
:func:`reflow` joins each paragraph's lines once, and rich then wraps it to the terminal.
"""

from __future__ import annotations

import inspect


def reflow(text: str) -> str:
    """Dedent, and join the lines of each paragraph (paragraphs are separated by a blank
    line). A paragraph whose later lines are indented (a list of commands, a table) or that
    starts with click's ``\\b`` marker keeps its lines."""
    return "\n\n".join(p if _keeps_lines(p) else " ".join(ln.strip() for ln in p.splitlines())
                       for p in inspect.cleandoc(text).split("\n\n"))


def _keeps_lines(paragraph: str) -> bool:
    later = paragraph.splitlines()[1:]
    return paragraph.startswith("\b") or any(ln[:1].isspace() or ln.startswith("- ")
                                             for ln in later)
