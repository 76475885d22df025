"""BIP-173 Bech32 as age uses it: no length limit, checksum over the lowercase string."""

from __future__ import annotations

from collections.abc import Iterable

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# Bech32 (not Bech32m): age keys use the original BIP-173 checksum constant.
_CHECKSUM_CONST = 1
_CHECKSUM_LENGTH = 6


class Bech32Error(ValueError):
    """The text is not valid Bech32; the message never repeats the text."""


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise Bech32Error("non-zero or excess padding bits")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` under the human-readable part ``hrp``; the result is lowercase."""
    hrp = hrp.lower()
    words = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ _CHECKSUM_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_LENGTH)]
    return hrp + "1" + "".join(CHARSET[w] for w in words + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """Return ``(hrp, data)`` with ``hrp`` lowercased; raise Bech32Error if invalid."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error("invalid character")
    lower = text.lower()
    if text != lower and text != text.upper():
        raise Bech32Error("mixed case")
    pos = lower.rfind("1")
    if pos < 1 or pos + 1 + _CHECKSUM_LENGTH > len(lower):
        raise Bech32Error("missing separator, prefix or checksum")
    hrp = lower[:pos]
    try:
        words = [_CHARSET_INDEX[c] for c in lower[pos + 1 :]]
    except KeyError:
        raise Bech32Error("invalid data character") from None
    if _polymod(_hrp_expand(hrp) + words) != _CHECKSUM_CONST:
        raise Bech32Error("bad checksum")
    return hrp, bytes(_convert_bits(words[:-_CHECKSUM_LENGTH], 5, 8, pad=False))
