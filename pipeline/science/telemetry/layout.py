"""Byte layout of owlpipe pod files: the single source of truth shared by encoder and decoder.

A pod file holds one exposure: a 64-byte pod header followed by a stream of CCSDS space packets
(CCSDS 133.0-B, version 0, telemetry, secondary header present). Every field is big-endian.
``docs/pod-format.md`` describes the same layout byte by byte; change both together.
"""

from __future__ import annotations

import binascii
import logging
import struct
from dataclasses import dataclass
from enum import IntEnum

from pipeline.core.names import POD_EXTENSION, pod_name  # noqa: F401 (part of the layout)

# ccsdspy announces itself on the console at import; a stage's stderr is no place for that.
_previous_disable = logging.root.manager.disable
logging.disable(logging.INFO)
try:
    import ccsdspy
    from ccsdspy import PacketArray, PacketField
finally:
    logging.disable(_previous_disable)

FORMAT_VERSION = 1

# -- pod header -------------------------------------------------------------------------------
POD_MAGIC = b"OWLPOD"
#: magic, version, header length, rootname, instrument, created (µs since 1970 UTC), packet count,
#: stream bytes, header/science/engineering packet counts, spare, CRC-16 of bytes 0..61.
POD_HEADER = struct.Struct(">6sHH10s8sQIQIIIHH")
POD_HEADER_SIZE = POD_HEADER.size  # 64
assert POD_HEADER_SIZE == 64


class Apid(IntEnum):
    """One application process identifier per kind of content."""

    HEADER = 0x101  # FITS header cards (80-character text)
    SCIENCE = 0x102  # blocks of science rows of one chip
    ENGINEERING = 0x103  # one on-board engineering snapshot per chip -> _spt.fits


APID_NAMES = {a.value: a.name.lower() for a in Apid}

# -- CCSDS primary header ---------------------------------------------------------------------
PRIMARY_HEADER_SIZE = 6
SEQ_COUNT_MODULO = 1 << 14
SEQ_CONTINUATION, SEQ_FIRST, SEQ_LAST, SEQ_UNSEGMENTED = 0, 1, 2, 3
MAX_PACKET_DATA = 65536  # the packet data length field counts bytes - 1 in 16 bits

# -- secondary header (all APIDs): CUC-style time of the exposure start ---------------------
#: coarse seconds since 2000-01-01T00:00:00 (MJD 51544.0), fine 1/65536 s.
SECONDARY_HEADER = struct.Struct(">IH")
SECONDARY_HEADER_SIZE = SECONDARY_HEADER.size  # 6
TIME_EPOCH_MJD = 51544.0
CRC_SIZE = 2

# -- user data headers per APID ---------------------------------------------------------------
#: HEADER: target HDU, spare, index of the first card in this packet; then 80-byte cards.
HEADER_FIELDS = struct.Struct(">BBH")
CARD_LENGTH = 80
CARDS_PER_PACKET = 36  # one FITS header block (2880 bytes) per packet
#: Targets of header packets: the raw primary, SCI extension EXTVER n, the spt primary.
TARGET_RAW_PRIMARY = 0
TARGET_SPT_PRIMARY = 128
MAX_CHIPS = 127

#: SCIENCE: chip (SCI EXTVER), spare, first row (0-based), rows, columns; then uint16 pixels.
SCIENCE_FIELDS = struct.Struct(">BBHHH")
SCIENCE_PREFIX = PRIMARY_HEADER_SIZE + SECONDARY_HEADER_SIZE + SCIENCE_FIELDS.size  # 20


def rows_per_packet(ncols: int) -> int:
    """Rows of one chip carried per science packet: as many whole rows as one packet holds."""
    room = MAX_PACKET_DATA - SECONDARY_HEADER_SIZE - SCIENCE_FIELDS.size - CRC_SIZE
    rows = room // (2 * ncols)
    if rows < 1:
        raise ValueError(f"a row of {ncols} pixels does not fit in one CCSDS packet")
    return rows


#: ENGINEERING: chip, spare, rows, columns, CRC-32 of the chip's big-endian pixels,
#: saturated-pixel count (65535 DN), minimum, maximum, mean (float32) of the pixels.
ENGINEERING_FIELDS = struct.Struct(">BBHHIIHHf")
ENGINEERING_PACKET_SIZE = (
    PRIMARY_HEADER_SIZE + SECONDARY_HEADER_SIZE + ENGINEERING_FIELDS.size + CRC_SIZE
)


def crc16(data: bytes | bytearray | memoryview, value: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), the CCSDS packet error control code."""
    return binascii.crc_hqx(data, value)


@dataclass(frozen=True)
class PodHeader:
    """The fixed header at the start of every pod file."""

    rootname: str
    instrument: str
    created_us: int
    n_packets: int
    stream_bytes: int
    n_header: int
    n_science: int
    n_engineering: int
    version: int = FORMAT_VERSION

    def pack(self) -> bytes:
        body = POD_HEADER.pack(
            POD_MAGIC, self.version, POD_HEADER_SIZE, self.rootname.encode("ascii"),
            self.instrument.upper().ljust(8).encode("ascii"), self.created_us, self.n_packets,
            self.stream_bytes, self.n_header, self.n_science, self.n_engineering, 0, 0,
        )
        return body[:-2] + struct.pack(">H", crc16(body[:-2]))


# -- ccsdspy packet definitions used by the decoder -------------------------------------------
def _secondary_header() -> list[PacketField]:
    return [
        PacketField(name="TIME_COARSE", data_type="uint", bit_length=32),
        PacketField(name="TIME_FINE", data_type="uint", bit_length=16),
    ]


HEADER_PACKET = ccsdspy.VariableLength(
    [
        *_secondary_header(),
        PacketField(name="TARGET", data_type="uint", bit_length=8),
        PacketField(name="SPARE", data_type="uint", bit_length=8),
        PacketField(name="CARD0", data_type="uint", bit_length=16),
        PacketArray(name="CARDS", data_type="uint", bit_length=8, array_shape="expand"),
        PacketField(name="CRC", data_type="uint", bit_length=16),
    ],
    apid=Apid.HEADER,
    name="header",
)

SCIENCE_PACKET = ccsdspy.VariableLength(
    [
        *_secondary_header(),
        PacketField(name="CHIP", data_type="uint", bit_length=8),
        PacketField(name="SPARE", data_type="uint", bit_length=8),
        PacketField(name="ROW0", data_type="uint", bit_length=16),
        PacketField(name="NROWS", data_type="uint", bit_length=16),
        PacketField(name="NCOLS", data_type="uint", bit_length=16),
        PacketArray(name="PIXELS", data_type="uint", bit_length=16, array_shape="expand"),
        PacketField(name="CRC", data_type="uint", bit_length=16),
    ],
    apid=Apid.SCIENCE,
    name="science",
)

ENGINEERING_PACKET = ccsdspy.FixedLength(
    [
        *_secondary_header(),
        PacketField(name="CHIP", data_type="uint", bit_length=8),
        PacketField(name="SPARE", data_type="uint", bit_length=8),
        PacketField(name="NROWS", data_type="uint", bit_length=16),
        PacketField(name="NCOLS", data_type="uint", bit_length=16),
        PacketField(name="PIXCRC", data_type="uint", bit_length=32),
        PacketField(name="NSATPIX", data_type="uint", bit_length=32),
        PacketField(name="PIXMIN", data_type="uint", bit_length=16),
        PacketField(name="PIXMAX", data_type="uint", bit_length=16),
        PacketField(name="PIXMEAN", data_type="float", bit_length=32),
        PacketField(name="CRC", data_type="uint", bit_length=16),
    ],
    apid=Apid.ENGINEERING,
    name="engineering",
)

