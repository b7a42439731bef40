"""Shamir secret sharing over GF(2^8) in sops's share layout.

A share is ``len(secret) + 1`` bytes: one y value per secret byte, then the x
coordinate (1..255).  The field uses the AES polynomial x^8+x^4+x^3+x+1, which
is what sops's (HashiCorp-derived) implementation uses.
"""

from __future__ import annotations

import os


def _build_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # multiply by the generator 3
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _build_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which recombine it."""
    if not 2 <= threshold <= parts <= 255:
        raise ValueError("need 2 <= threshold <= parts <= 255")
    if not secret:
        raise ValueError("cannot split an empty secret")
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for index, share in enumerate(shares):
        share[-1] = index + 1
    for byte_index, byte in enumerate(secret):
        coefficients = [byte] + list(os.urandom(threshold - 1))
        for share in shares:
            x = share[-1]
            acc = 0
            for coefficient in reversed(coefficients):
                acc = _mul(acc, x) ^ coefficient
            share[byte_index] = acc
    return [bytes(share) for share in shares]


def combine(shares: list[bytes]) -> bytes:
    """Recombine shares by Lagrange interpolation at x = 0."""
    if len(shares) < 2:
        raise ValueError("need at least two shares")
    length = len(shares[0])
    if length < 2 or any(len(share) != length for share in shares):
        raise ValueError("shares have different lengths")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate share")
    secret = bytearray()
    for byte_index in range(length - 1):
        acc = 0
        for j, share in enumerate(shares):
            basis = 1
            for m, xm in enumerate(xs):
                if m != j:
                    basis = _mul(basis, _div(xm, xm ^ xs[j]))
            acc ^= _mul(share[byte_index], basis)
        secret.append(acc)
    return bytes(secret)
