"""The shape of the TCP package (issue 9), checked so it does not drift back: one codec,
no reaching into another object's private attributes, no file a reader cannot hold."""

from __future__ import annotations

import io
import pathlib
import tokenize

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "wirestack"
TCP_FILES = sorted((SRC / "tcp").rglob("*.py"))


def _code_tokens(path: pathlib.Path) -> list[tokenize.TokenInfo]:
    """The tokens of a file without comments and strings (so docstrings may name things)."""
    toks = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [t for t in toks if t.type not in (tokenize.COMMENT, tokenize.STRING)]


@pytest.mark.parametrize("path", TCP_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_tcp_packs_no_headers_itself(path):
    """Every TCP segment is built and parsed by wire/tcp.py (the one codec)."""
    names = [t.string for t in _code_tokens(path) if t.type == tokenize.NAME]
    assert "struct" not in names


@pytest.mark.parametrize("path", TCP_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_tcp_reads_no_other_objects_private_attributes(path):
    """``x._name`` only with x = self (or cls): parts talk through named methods."""
    toks = _code_tokens(path)
    bad = []
    for a, dot, b in zip(toks, toks[1:], toks[2:]):
        if (dot.string == "." and a.type == tokenize.NAME and b.type == tokenize.NAME
                and b.string.startswith("_") and not b.string.startswith("__")
                and a.string not in ("self", "cls")):
            bad.append(f"line {a.start[0]}: {a.string}.{b.string}")
    assert not bad


def test_no_source_file_over_800_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 800}
    assert not long
