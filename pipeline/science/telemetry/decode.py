"""Validate and decode pod files.

:func:`scan_pod` walks the packet stream once and checks everything a receiving station can
check without understanding the content: the pod header and its CRC, packet boundaries, CCSDS
version/type/flags, known APIDs, each packet's CRC-16, 14-bit sequence continuity per APID and the
packet counts the pod header promises. :func:`decode_pod` then hands each APID's packets to
``ccsdspy`` and rebuilds headers, chips and the engineering snapshot, checking the content
(card order, row coverage, the on-board pixel CRC-32). Every failure is one :class:`BadInput`
line naming the pod, the packet and the value.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.utils.exceptions import AstropyUserWarning

from pipeline.core.errors import BadInput
from pipeline.core.names import BadName, parse_dataset
from pipeline.science.telemetry import layout as L


@dataclass(frozen=True)
class PacketTable:
    """Where each packet of a pod starts, and its primary-header fields (one array entry per packet)."""

    starts: np.ndarray
    lengths: np.ndarray
    apids: np.ndarray
    flags: np.ndarray
    seqs: np.ndarray

    def select(self, apid: L.Apid) -> np.ndarray:
        return np.flatnonzero(self.apids == apid)


@dataclass(frozen=True)
class ScannedPod:
    """A pod whose structure has been validated; ``data`` is the whole file."""

    name: str
    header: L.PodHeader
    data: bytes
    packets: PacketTable

    def apid_bytes(self, apid: L.Apid) -> bytes:
        """The packets of one APID, concatenated in stream order (what ccsdspy decodes)."""
        idx = self.packets.select(apid)
        starts, lengths = self.packets.starts[idx], self.packets.lengths[idx]
        if len(idx) and starts[-1] + lengths[-1] - starts[0] == lengths.sum():  # contiguous
            return self.data[starts[0] : starts[-1] + lengths[-1]]
        return b"".join(self.data[s : s + n] for s, n in zip(starts, lengths, strict=True))


@dataclass
class ChipData:
    """One chip as flown: its SCI header cards, its pixels and its engineering snapshot."""

    header: fits.Header
    pixels: np.ndarray
    engineering: dict[str, float | int]
    words: np.ndarray  # engineering user data as 16-bit words, kept for the spt UDL extension


@dataclass
class DecodedPod:
    pod: L.PodHeader
    primary: fits.Header
    support: fits.Header
    chips: dict[int, ChipData] = field(default_factory=dict)

    @property
    def rootname(self) -> str:
        return self.pod.rootname


def _bad(name: str, text: str, path: Path | None, keyword: str | None = None) -> BadInput:
    return BadInput(f"{name}: {text}", path=path, keyword=keyword)


def read_pod_header(data: bytes, name: str, path: Path | None = None) -> L.PodHeader:
    """Parse and check the 64-byte pod header."""
    if len(data) < L.POD_HEADER_SIZE:
        raise _bad(name, f"truncated pod: {len(data)} bytes, shorter than the "
                         f"{L.POD_HEADER_SIZE}-byte pod header", path)
    (magic, version, hlen, root, inst, created, npk, nbytes, nh, ns, ne, _spare, crc) = (
        L.POD_HEADER.unpack_from(data))
    if magic != L.POD_MAGIC:
        raise _bad(name, f"not a pod file: magic {magic!r}, expected {L.POD_MAGIC!r}", path)
    if version != L.FORMAT_VERSION or hlen != L.POD_HEADER_SIZE:
        raise _bad(name, f"unsupported pod format version {version} (header length {hlen}); "
                         f"this reader knows version {L.FORMAT_VERSION}", path)
    computed = L.crc16(data[: L.POD_HEADER_SIZE - 2])
    if computed != crc:
        raise _bad(name, f"pod header CRC mismatch: stored 0x{crc:04X}, computed 0x{computed:04X}", path)
    try:
        rootname = parse_dataset(root.rstrip(b"\0").decode("ascii")).name
    except (UnicodeDecodeError, BadName) as exc:
        raise _bad(name, f"pod header rootname {root!r} invalid: {exc}", path) from None
    return L.PodHeader(rootname=rootname, instrument=inst.decode("ascii", "replace").strip(),
                       created_us=created, n_packets=npk, stream_bytes=nbytes, n_header=nh,
                       n_science=ns, n_engineering=ne, version=version)


def _expected_length_problem(apid: int, length: int) -> str | None:
    fixed = L.PRIMARY_HEADER_SIZE + L.SECONDARY_HEADER_SIZE + L.CRC_SIZE
    if apid == L.Apid.HEADER:
        cards = length - fixed - L.HEADER_FIELDS.size
        if cards <= 0 or cards % L.CARD_LENGTH or cards // L.CARD_LENGTH > L.CARDS_PER_PACKET:
            return f"header packet of {length} bytes does not hold 1..{L.CARDS_PER_PACKET} 80-byte cards"
    elif apid == L.Apid.SCIENCE:
        pix = length - fixed - L.SCIENCE_FIELDS.size
        if pix <= 0 or pix % 2:
            return f"science packet of {length} bytes does not hold whole 16-bit pixels"
    elif apid == L.Apid.ENGINEERING and length != L.ENGINEERING_PACKET_SIZE:
        return f"engineering packet of {length} bytes, expected {L.ENGINEERING_PACKET_SIZE}"
    return None


def scan_pod(source: Path | str | bytes, name: str | None = None, *, data: bytes | None = None,
             trusted_sha256: str | None = None, data_sha256: str | None = None) -> ScannedPod:
    """Validate a pod's structure and index its packets; raise :class:`BadInput` on the first fault.

    ``data``: the bytes of the pod file ``source``, already read by the caller (who hashes the same
    buffer), so the file is not read again; errors still name the file.

    ``trusted_sha256``: the SHA-256 of a pod already decoded with every check (INGEST archives the pods it
    checked under their hash). Bytes that hash to it skip the packets' CRC-16s, the slowest check (~0.2 s
    per full-frame pod against ~0.03 s for the hash); everything else is still checked. Other bytes get
    every check. ``data_sha256``: the hash of ``data`` when the caller has computed it (INGEST hashes the
    buffer it archives), so it is not computed again."""
    path = None if isinstance(source, bytes) else Path(source)
    if path is None:
        data, name = source, name or "pod"
    else:
        name = name or path.name
        if data is None:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise BadInput(f"pod {path.name} not found at {path.parent}", path=None) from None
    header = read_pod_header(data, name, path)
    packet_crcs = trusted_sha256 is None or (data_sha256 or hashlib.sha256(data).hexdigest()) != trusted_sha256

    starts, lengths, apids, flags, seqs = [], [], [], [], []
    next_seq: dict[int, int] = {}
    off, end, n = L.POD_HEADER_SIZE, len(data), 0
    while off < end:
        where = f"packet #{n} at byte {off}"
        if end - off < L.PRIMARY_HEADER_SIZE:
            raise _bad(name, f"truncated pod: {end - off} stray bytes after the last packet "
                             f"(byte {off}), too few for a packet header", path)
        b0, b1, b2, b3, b4, b5 = data[off : off + L.PRIMARY_HEADER_SIZE]
        length = ((b4 << 8) | b5) + 1 + L.PRIMARY_HEADER_SIZE
        apid, flag, seq = ((b0 & 0x07) << 8) | b1, b2 >> 6, ((b2 & 0x3F) << 8) | b3
        if b0 >> 3 != 0b00001:
            raise _bad(name, f"{where}: not a version-0 telemetry packet with a secondary header "
                             f"(first byte 0x{b0:02X})", path)
        if apid not in L.APID_NAMES:
            known = ", ".join(f"0x{a:03X}" for a in L.APID_NAMES)
            raise _bad(name, f"{where}: unknown APID 0x{apid:03X} (known: {known})", path)
        kind = f"{L.APID_NAMES[apid]} APID 0x{apid:03X} seq {seq}"
        if off + length > end:
            raise _bad(name, f"truncated pod: {where} ({kind}) declares {length} bytes but only "
                             f"{end - off} remain", path)
        problem = _expected_length_problem(apid, length)
        if problem:
            raise _bad(name, f"{where} ({kind}): {problem}", path)
        if packet_crcs:
            stored = (data[off + length - 2] << 8) | data[off + length - 1]
            computed = L.crc16(memoryview(data)[off : off + length - 2])
            if stored != computed:
                raise _bad(name, f"CRC mismatch in {where} ({kind}): stored 0x{stored:04X}, "
                                 f"computed 0x{computed:04X}", path)
        expected = next_seq.get(apid, 0)
        if seq != expected:
            missing = (seq - expected) % L.SEQ_COUNT_MODULO
            raise _bad(name, f"{where}: {L.APID_NAMES[apid]} APID 0x{apid:03X} sequence count "
                             f"jumps from {expected} to {seq} ({missing} packet(s) missing or "
                             "out of order)", path)
        next_seq[apid] = (seq + 1) % L.SEQ_COUNT_MODULO
        starts.append(off)
        lengths.append(length)
        apids.append(apid)
        flags.append(flag)
        seqs.append(seq)
        off += length
        n += 1

    table = PacketTable(*(np.asarray(a, dtype=np.int64) for a in (starts, lengths, apids, flags, seqs)))
    counts = {a: int(np.count_nonzero(table.apids == a)) for a in L.Apid}
    promised = {L.Apid.HEADER: header.n_header, L.Apid.SCIENCE: header.n_science,
                L.Apid.ENGINEERING: header.n_engineering}
    for apid, want in promised.items():
        if counts[apid] != want:
            raise _bad(name, f"pod holds {counts[apid]} {apid.name.lower()} packets, its header "
                             f"declares {want} (truncated or packets missing at the end)", path)
    if end - L.POD_HEADER_SIZE != header.stream_bytes or n != header.n_packets:
        raise _bad(name, f"packet stream is {end - L.POD_HEADER_SIZE} bytes in {n} packets, the pod "
                         f"header declares {header.stream_bytes} bytes in {header.n_packets}", path)
    return ScannedPod(name=name, header=header, data=data, packets=table)


def _load(packet_def, scanned: ScannedPod, apid: L.Apid) -> dict[str, np.ndarray]:
    return packet_def.load(io.BytesIO(scanned.apid_bytes(apid)), include_primary_header=True)


def _headers(scanned: ScannedPod, path: Path | None) -> dict[int, fits.Header]:
    """Reassemble each target's card text, checking segmentation and card order."""
    name = scanned.name
    fields = _load(L.HEADER_PACKET, scanned, L.Apid.HEADER)
    text: dict[int, list[bytes]] = {}
    ncards: dict[int, int] = {}
    open_target: int | None = None
    for target, card0, cards, flag in zip(fields["TARGET"], fields["CARD0"], fields["CARDS"],
                                          fields["CCSDS_SEQUENCE_FLAG"], strict=True):
        target, card0, flag = int(target), int(card0), int(flag)
        if flag in (L.SEQ_FIRST, L.SEQ_UNSEGMENTED):
            if open_target is not None or target in text:
                raise _bad(name, f"header target {target} starts while target {open_target} is "
                                 "unfinished or was already sent", path)
            text[target], ncards[target] = [], 0
            open_target = target if flag == L.SEQ_FIRST else None
        elif open_target != target:
            raise _bad(name, f"header packet for target {target} continues a segment that was "
                             "never started", path)
        elif flag == L.SEQ_LAST:
            open_target = None
        if card0 != ncards[target]:
            raise _bad(name, f"header target {target}: packet starts at card {card0}, expected "
                             f"card {ncards[target]}", path)
        text[target].append(cards.tobytes())
        ncards[target] += len(cards) // L.CARD_LENGTH
    if open_target is not None:
        raise _bad(name, f"header target {open_target} never finished (last segment missing)", path)
    return {target: _parse_cards(b"".join(parts), target, name, path) for target, parts in text.items()}


_KEYWORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- ")


def _parse_cards(text: bytes, target: int, name: str, path: Path | None) -> fits.Header:
    """FITS cards to a Header; any card astropy cannot parse cleanly is bad input, not a warning."""
    cards = np.frombuffer(text, np.uint8).reshape(-1, L.CARD_LENGTH)
    unprintable = np.flatnonzero(((cards < 32) | (cards > 126)).any(axis=1))
    if unprintable.size:
        raise _bad(name, f"header target {target} card {int(unprintable[0])}: non-ASCII or control bytes", path)
    for i, card in enumerate(cards):
        if not set(card[:8].tobytes()) <= _KEYWORD_BYTES:
            raise _bad(name, f"header target {target} card {i}: invalid keyword "
                             f"{card[:8].tobytes().decode()!r}", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            header = fits.Header.fromstring(text.decode("ascii"))
            for card in header.cards:
                _ = card.value  # parses the value now, so a damaged one fails here
    except (ValueError, VerifyError, AstropyUserWarning) as exc:
        raise _bad(name, f"header target {target}: invalid FITS card ({' '.join(str(exc).split())})",
                   path) from None
    return header


def _engineering(scanned: ScannedPod, path: Path | None) -> dict[int, tuple[dict, np.ndarray]]:
    fields = _load(L.ENGINEERING_PACKET, scanned, L.Apid.ENGINEERING)
    names = ("NROWS", "NCOLS", "PIXCRC", "NSATPIX", "PIXMIN", "PIXMAX", "PIXMEAN")
    out: dict[int, tuple[dict, np.ndarray]] = {}
    user = slice(L.PRIMARY_HEADER_SIZE + L.SECONDARY_HEADER_SIZE, L.ENGINEERING_PACKET_SIZE - L.CRC_SIZE)
    for i, start in enumerate(scanned.packets.starts[scanned.packets.select(L.Apid.ENGINEERING)]):
        chip = int(fields["CHIP"][i])
        if chip in out or not 1 <= chip <= L.MAX_CHIPS:
            raise _bad(scanned.name, f"engineering packet {i}: chip {chip} invalid or repeated", path)
        values = {k: fields[k][i].item() for k in names}
        packet = scanned.data[start : start + L.ENGINEERING_PACKET_SIZE]
        out[chip] = (values, np.frombuffer(packet[user], ">u2").astype(np.uint16))
    return out


def _science(scanned: ScannedPod, geometry: dict[int, tuple[int, int]], path: Path | None
             ) -> dict[int, np.ndarray]:
    """Place every science block into its chip; every row must arrive exactly once."""
    name = scanned.name
    fields = _load(L.SCIENCE_PACKET, scanned, L.Apid.SCIENCE)
    chips = {c: np.empty(shape, np.uint16) for c, shape in geometry.items()}
    seen = {c: np.zeros(shape[0], np.int32) for c, shape in geometry.items()}
    for i, (chip, row0, nrows, ncols, pix) in enumerate(zip(
            fields["CHIP"], fields["ROW0"], fields["NROWS"], fields["NCOLS"], fields["PIXELS"],
            strict=True)):
        chip, row0, nrows, ncols = int(chip), int(row0), int(nrows), int(ncols)
        where = f"science packet seq {int(fields['CCSDS_SEQUENCE_COUNT'][i])}"
        if chip not in chips:
            raise _bad(name, f"{where}: chip {chip} has no engineering snapshot", path)
        height, width = geometry[chip]
        if ncols != width or row0 + nrows > height or pix.size != nrows * ncols:
            raise _bad(name, f"{where}: rows {row0}..{row0 + nrows - 1} x {ncols} columns "
                             f"({pix.size} pixels) do not fit chip {chip} ({height}x{width})", path)
        chips[chip][row0 : row0 + nrows] = pix.reshape(nrows, ncols)
        seen[chip][row0 : row0 + nrows] += 1
    for chip, count in seen.items():
        bad = np.flatnonzero(count != 1)
        if bad.size:
            row = int(bad[0])
            raise _bad(name, f"chip {chip}: row {row} arrived {int(count[row])} times, expected once "
                             f"({bad.size} row(s) affected)", path)
    return chips


def decode_pod(source: Path | str | bytes, name: str | None = None, *, data: bytes | None = None,
               trusted_sha256: str | None = None, data_sha256: str | None = None) -> DecodedPod:
    """Validate and decode a pod into headers, chip pixels and engineering snapshots (``data``,
    ``trusted_sha256``, ``data_sha256``: see :func:`scan_pod`)."""
    scanned = scan_pod(source, name, data=data, trusted_sha256=trusted_sha256, data_sha256=data_sha256)
    path = None if isinstance(source, bytes) else Path(source)
    name = scanned.name
    headers = _headers(scanned, path)
    engineering = _engineering(scanned, path)
    if L.TARGET_RAW_PRIMARY not in headers:
        raise _bad(name, "no primary header cards (header target 0)", path)
    primary = headers.pop(L.TARGET_RAW_PRIMARY)
    support = headers.pop(L.TARGET_SPT_PRIMARY, fits.Header())
    root = str(primary.get("ROOTNAME", "")).strip().lower()
    if root != scanned.header.rootname:
        raise _bad(name, f"ROOTNAME keyword {root!r} does not match the pod's rootname "
                         f"{scanned.header.rootname!r}", path, keyword="ROOTNAME")
    if set(headers) != set(engineering):
        raise _bad(name, f"SCI headers for chips {sorted(headers)} but engineering snapshots for "
                         f"chips {sorted(engineering)}", path)
    geometry = {c: (int(v["NROWS"]), int(v["NCOLS"])) for c, (v, _) in engineering.items()}
    pixels = _science(scanned, geometry, path)
    decoded = DecodedPod(pod=scanned.header, primary=primary, support=support)
    for chip in sorted(pixels):
        values, words = engineering[chip]
        crc = zlib.crc32(pixels[chip].astype(">u2").data) & 0xFFFFFFFF
        if crc != values["PIXCRC"]:
            raise _bad(name, f"chip {chip}: decoded pixels have CRC-32 0x{crc:08X}, the on-board "
                             f"snapshot says 0x{values['PIXCRC']:08X}", path)
        decoded.chips[chip] = ChipData(headers[chip], pixels[chip], values, words)
    return decoded


def pod_rootname(path: Path | str) -> str:
    """The rootname a pod file declares in its header (reads only the first 64 bytes)."""
    p = Path(path)
    with open(p, "rb") as fh:
        return read_pod_header(fh.read(L.POD_HEADER_SIZE), p.name, p).rootname


__all__ = ["ChipData", "DecodedPod", "PacketTable", "ScannedPod", "decode_pod", "pod_rootname",
           "read_pod_header", "scan_pod"]
