"""The byte containers the codecs and buffers accept.

Parsers take any of them (and slice through a ``memoryview``, so no copy is made);
builders return ``bytes``. ``collections.abc.Buffer`` would say this in one word, but it
needs Python 3.12.
"""

from typing import TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview
