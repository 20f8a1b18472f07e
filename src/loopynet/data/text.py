"""Bytes to text where text enters loopynet (review files, CoNLL files, `--file`, stdin, vector files).

Text files saved by Windows editors often start with a UTF-8 byte-order mark (EF BB BF); decoded as
plain UTF-8 it becomes a U+FEFF character glued to the first word (a different token, an extra CoNLL
sentence, a different prediction). `decode_utf8` drops it, like Python's `utf-8-sig` codec, but keeps
error offsets counted from the first byte of the input, BOM included.
"""

from __future__ import annotations

import codecs

BOM = codecs.BOM_UTF8


def decode_utf8(raw: bytes, errors: str = "strict") -> str:
    """`raw` decoded as UTF-8 without a leading byte-order mark.

    Raises:
        UnicodeDecodeError: (with errors="strict") invalid UTF-8; `.start` is the byte offset in `raw`.
    """
    skip = len(BOM) if raw.startswith(BOM) else 0
    try:
        return raw[skip:].decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise UnicodeDecodeError("utf-8", raw, err.start + skip, err.end + skip, err.reason) from None
