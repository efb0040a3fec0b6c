"""Reading a PNG's pixels in plain Python (zlib + the five row filters), for the QR round-trip test.

Enough for what segno writes: greyscale or palette, 1 to 8 bits, not interlaced. Returns one byte per
pixel (0 dark, 255 light) so a decoder that takes a 2-D buffer can read it.
"""

from __future__ import annotations

import struct
import zlib


def grey_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, pixels): one byte per pixel, row by row, 0 = dark and 255 = light."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    position, header, palette, compressed = 8, b"", b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        body = png[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour not in (0, 3) or interlace:
        raise ValueError(f"colour type {colour} / interlace {interlace} not read here")
    stride = (width * depth + 7) // 8
    raw = zlib.decompress(compressed)
    previous = bytearray(stride)
    pixels = bytearray()
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous)
        for x in range(width):
            bit_offset = x * depth
            value = (line[bit_offset // 8] >> (8 - depth - bit_offset % 8)) & ((1 << depth) - 1)
            pixels.append(_grey(value, colour, depth, palette))
        previous = line
    return width, height, bytes(pixels)


def _grey(value: int, colour: int, depth: int, palette: bytes) -> int:
    if colour == 3:  # a palette: its red channel (segno's palettes are grey)
        return palette[value * 3] if palette else value
    return value * 255 // ((1 << depth) - 1)


def _unfilter(kind: int, line: bytearray, previous: bytearray) -> bytearray:
    for i in range(len(line)):
        left = line[i - 1] if i else 0
        up = previous[i]
        up_left = previous[i - 1] if i else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            line[i] = (line[i] + _paeth(left, up, up_left)) & 0xFF
    return line


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
