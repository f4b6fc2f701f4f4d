"""IVOA SIA v2 query endpoint (``/sia/query``) and its VOSI documents (``/sia/capabilities``, ``/sia/availability``).

Parameters follow SIA 2.0, by GET or by POST (a form body, ``application/x-www-form-urlencoded``,
meaning what a query string means; both may be combined): names are case-insensitive, a parameter
may repeat (values OR-ed), intervals are ``low high`` with ``-Inf``/``+Inf`` for open ends. The
answer is a VOTable of ObsCore rows with ``QUERY_STATUS`` ``OK`` or ``OVERFLOW`` (more than MAXREC
rows); a bad parameter is a 400 whose VOTable says ``QUERY_STATUS=ERROR`` and what was wrong, which
pyvo raises as DALQueryError.
"""

from __future__ import annotations

import math
import re
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.core.names import parse_dataset
from pipeline.service import search
from pipeline.service.errors import ApiError
from pipeline.service.inputs import form_pairs, plain_param, query_params

SIA2_ID = "ivo://ivoa.net/std/SIA#query-2.0"
VOTABLE = "application/x-votable+xml"
DEFAULT_MAXREC, MAX_MAXREC = 1000, 10000
MAX_VALUES = 100
#: Largest POST body read (a form of many POLYGONs is a few kB).
MAX_BODY = 64 * 1024
_FORM = "application/x-www-form-urlencoded"
_FORMATS = {"votable", "application/x-votable+xml", "text/xml", "application/x-votable"}
_STRING_PARAMS = {"INSTRUMENT": "instruments", "TARGET": "targets", "COLLECTION": "collections",
                  "FACILITY": "facilities", "DPTYPE": "dptypes", "FORMAT": "formats", "POL": "pols"}
_INTERVAL_PARAMS = {"BAND": "bands", "TIME": "times", "EXPTIME": "exptimes", "FOV": "fovs"}
_UNSUPPORTED = {"SPATRES", "SPECRP", "TIMERES"}
KNOWN = {"POS", "ID", "CALIB", "MAXREC", "RESPONSEFORMAT", *_STRING_PARAMS, *_INTERVAL_PARAMS, *_UNSUPPORTED}

# (name, ObsCore UCD, unit, datatype)
COLUMNS = [
    ("dataproduct_type", "meta.code.class", None, "U"), ("calib_level", "meta.code;obs.calib", None, "i"),
    ("obs_collection", "meta.id", None, "U"), ("obs_id", "meta.id", None, "U"),
    ("obs_publisher_did", "meta.ref.ivoid", None, "U"),
    ("access_url", "meta.ref.url", None, "U"), ("access_format", "meta.code.mime", None, "U"),
    ("access_estsize", "phys.size;meta.file", "kbyte", "l"),
    ("target_name", "meta.id;src", None, "U"),
    ("s_ra", "pos.eq.ra", "deg", "f"), ("s_dec", "pos.eq.dec", "deg", "f"),
    ("s_fov", "phys.angSize;instr.fov", "deg", "f"),
    ("s_region", "pos.outline;obs.field", None, "U"),
    ("t_min", "time.start;obs.exposure", "d", "f"), ("t_max", "time.end;obs.exposure", "d", "f"),
    ("t_exptime", "time.duration;obs.exposure", "s", "f"),
    ("em_min", "em.wl;stat.min", "m", "f"), ("em_max", "em.wl;stat.max", "m", "f"),
    ("facility_name", "meta.id;instr.tel", None, "U"), ("instrument_name", "meta.id;instr", None, "U"),
    ("pol_states", "meta.code;phys.polarization", None, "U"),
    ("data_rights", "meta.code", None, "U"), ("obs_release_date", "time.release", None, "U"),
    ("proposal_id", "meta.id;obs.proposal", None, "U"), ("proposal_pi", "meta.id.PI", None, "U"),
    ("filters", "instr.filter", None, "U"), ("dataset_version", "meta.version", None, "i"),
    ("sha256", "meta.checksum", None, "U"),
]


class SiaError(ApiError):
    """A bad SIA request: answered as a VOTable with QUERY_STATUS=ERROR."""


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SiaError(400, f"{name}: {text[:40]!r} is not a number") from None
    if math.isnan(value):
        raise SiaError(400, f"{name}: NaN is not allowed")
    return value


def _finite(name: str, text: str, low: float, high: float) -> float:
    value = _float(name, text)
    if not low <= value <= high:
        raise SiaError(400, f"{name}: {text[:40]} is outside [{low:g}, {high:g}]")
    return value


def parse_pos(text: str) -> tuple[str, tuple]:
    parts = text.split()
    if not parts:
        raise SiaError(400, "POS: empty; use CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 or POLYGON ra dec ...")
    shape, nums = parts[0].upper(), parts[1:]
    if shape == "CIRCLE" and len(nums) == 3:
        return shape, (_finite("POS", nums[0], 0, 360), _finite("POS", nums[1], -90, 90),
                       _finite("POS", nums[2], 0, 180))
    if shape == "RANGE" and len(nums) == 4:
        ra1, ra2 = (max(0.0, min(360.0, _float("POS", n))) for n in nums[:2])
        dec1, dec2 = (max(-90.0, min(90.0, _float("POS", n))) for n in nums[2:])
        if ra1 > ra2 or dec1 > dec2:
            raise SiaError(400, f"POS: RANGE {text[:80]!r} has a lower bound above its upper bound")
        return shape, (ra1, ra2, dec1, dec2)
    if shape == "POLYGON" and len(nums) >= 6 and len(nums) % 2 == 0 and len(nums) <= 200:
        pts = [(_finite("POS", nums[i], 0, 360), _finite("POS", nums[i + 1], -90, 90)) for i in range(0, len(nums), 2)]
        return shape, tuple(pts)
    raise SiaError(400, f"POS: {text[:80]!r} is not CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 or "
                        f"POLYGON ra1 dec1 ra2 dec2 ra3 dec3 ... (degrees)")


def parse_interval(name: str, text: str) -> tuple[float, float]:
    parts = text.split()
    if len(parts) not in (1, 2):
        raise SiaError(400, f"{name}: {text[:80]!r} is not 'low high' (or one value)")
    lo, hi = _float(name, parts[0]), _float(name, parts[-1])
    if lo > hi:
        raise SiaError(400, f"{name}: {text[:80]!r}: low is above high")
    return lo, hi


def parse(request: Request, body: bytes = b"") -> tuple[search.Constraints, int]:
    """Constraints and MAXREC from a request's query string and form body (errors are :class:`SiaError`)."""
    try:
        pairs = query_params(request) + form_pairs(body)
    except ApiError as exc:
        raise SiaError(exc.status, exc.message) from None
    c = search.Constraints()
    maxrec = DEFAULT_MAXREC
    counts: dict[str, int] = {}
    for key, value in pairs:
        name = key.upper()
        counts[name] = counts.get(name, 0) + 1
        if name not in KNOWN:
            raise SiaError(400, f"unknown parameter {key[:40]!r}; SIA 2.0 parameters here: {', '.join(sorted(KNOWN))}")
        if name in _UNSUPPORTED:
            raise SiaError(400, f"{name} is not supported by this service")
        if counts[name] > MAX_VALUES:
            raise SiaError(400, f"{name}: more than {MAX_VALUES} values")
        value = value.strip()
        if name == "POS":
            shape, nums = parse_pos(value)
            {"CIRCLE": c.circles, "RANGE": c.ranges}.get(shape, c.polygons).append(
                list(nums) if shape == "POLYGON" else nums)
        elif name in _INTERVAL_PARAMS:
            getattr(c, _INTERVAL_PARAMS[name]).append(parse_interval(name, value))
        elif name in _STRING_PARAMS:
            getattr(c, _STRING_PARAMS[name]).append(plain_param(name, value, SiaError))
        elif name == "ID":
            try:
                c.ids.append(parse_dataset(value.rsplit("?", 1)[-1]).name)
            except ValueError:
                raise SiaError(400, f"ID: {value[:40]!r} is not a dataset name or publisher DID") from None
        elif name == "CALIB":
            if value not in {"0", "1", "2", "3", "4"}:
                raise SiaError(400, f"CALIB: {value[:40]!r} is not a calibration level 0-4")
            c.calibs.append(int(value))
        elif name == "MAXREC":
            if not re.fullmatch(r"\d{1,9}", value):
                raise SiaError(400, f"MAXREC: {value[:40]!r} is not a whole number")
            maxrec = int(value)
            if maxrec > MAX_MAXREC:
                raise SiaError(400, f"MAXREC={maxrec} exceeds this service's limit of {MAX_MAXREC}")
        elif name == "RESPONSEFORMAT" and value.lower() not in _FORMATS:
            raise SiaError(400, f"RESPONSEFORMAT {value[:40]!r} is not supported; use votable")
    return c, maxrec


_DATATYPES = {"U": 'datatype="char" arraysize="*"', "i": 'datatype="int"', "l": 'datatype="long"',
              "f": 'datatype="double"'}
_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n<RESOURCE type="results">\n')


def _info(status: str, message: str) -> str:
    return f'<INFO name="QUERY_STATUS" value="{status}">{escape(message)}</INFO>\n'


def _cell(value, kind: str) -> str:
    if value is None:
        return "<TD/>"
    if kind == "f":
        return f"<TD>{value!r}</TD>"
    return f"<TD>{escape(str(value))}</TD>"


def _votable(products: list[search.Product], status: str, message: str, base: str) -> bytes:
    """TABLEDATA VOTable 1.4 of ObsCore rows, written directly (astropy's writer costs ~1 ms a row)."""
    out = [_HEAD, _info(status, message), "<TABLE>\n"]
    for name, ucd, unit, kind in COLUMNS:
        out.append(f'<FIELD name="{name}" ucd="{ucd}" {_DATATYPES[kind]}' + (f' unit="{unit}"' if unit else "")
                   + "/>\n")
    out.append("<DATA><TABLEDATA>\n")
    for p in products:
        values = {
            "dataproduct_type": p.dataproduct_type, "calib_level": p.calib_level, "obs_collection": search.COLLECTION,
            "obs_id": p.obs_id, "obs_publisher_did": f"ivo://owl/hst?{p.obs_id}",
            "access_url": f"{base}/api/datasets/{p.obs_id}/files/{p.name}?version={p.version}",
            "access_format": p.access_format, "access_estsize": max(1, math.ceil(p.size / 1024)),
            "target_name": p.target_name, "s_ra": p.s_ra, "s_dec": p.s_dec, "s_fov": p.s_fov,
            "s_region": p.s_region or None, "t_min": p.t_min, "t_max": p.t_max, "t_exptime": p.t_exptime,
            "em_min": p.em_min, "em_max": p.em_max, "facility_name": search.FACILITY,
            "instrument_name": p.instrument_name, "pol_states": None, "data_rights": p.data_rights,
            "obs_release_date": p.obs_release_date, "proposal_id": p.program, "proposal_pi": p.pi,
            "filters": p.filters, "dataset_version": p.version, "sha256": p.sha256}
        out.append("<TR>" + "".join(_cell(values[name], kind) for name, _u, _n, kind in COLUMNS) + "</TR>\n")
    out.append("</TABLEDATA></DATA>\n</TABLE>\n")
    if status != "OK":  # OVERFLOW goes after the table too, where pyvo looks for it last
        out.append(_info(status, message))
    out.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(out).encode()


def error_votable(message: str) -> bytes:
    """A VOTable that says QUERY_STATUS=ERROR and why."""
    return (_HEAD + _info("ERROR", message) + "</RESOURCE>\n</VOTABLE>\n").encode()


async def _form_body(request: Request) -> bytes:
    """The POST body of a form query; any other content type or an oversized body is a SIA error."""
    kind = request.headers.get("content-type", _FORM).split(";")[0].strip().lower()
    if kind != _FORM:
        raise SiaError(415, f"POST a form ({_FORM}), not {kind[:60]!r}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise SiaError(413, f"POST body longer than {MAX_BODY} bytes")
    return body


async def query(request: Request) -> Response:
    """``GET`` or ``POST /sia/query``: the same parameters, the same answer."""
    body = await _form_body(request) if request.method == "POST" else b""
    return await run_in_threadpool(_answer, request, body)


def _answer(request: Request, body: bytes) -> Response:
    state = request.app.state.service
    c, maxrec = parse(request, body)
    found = list(search.search(state.archive.engine, state.programs, c, maxrec + 1))
    overflow = len(found) > maxrec
    body = _votable(found[:maxrec], "OVERFLOW" if overflow else "OK",
                    f"more than MAXREC={maxrec} rows match" if overflow else f"{len(found)} row(s)",
                    state.public_url(request))
    return Response(body, media_type=VOTABLE)


def capabilities(request: Request) -> Response:
    base = escape(state_url(request))
    caps = [("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/sia/capabilities", "full", ""),
            ("ivo://ivoa.net/std/VOSI#availability", f"{base}/sia/availability", "full", ""),
            (SIA2_ID, f"{base}/sia/query", "base", ' role="std" version="2.0"')]
    body = ['<?xml version="1.0" encoding="UTF-8"?>',
            '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1">']
    for standard, url, use, extra in caps:
        body.append(f'  <capability standardID="{standard}">\n    <interface xsi:type="vs:ParamHTTP"{extra}>'
                     f'<accessURL use="{use}">{url}</accessURL></interface>\n  </capability>')
    body.append("</vosi:capabilities>")
    return Response("\n".join(body) + "\n", media_type="text/xml")


def availability(request: Request) -> Response:
    from sqlalchemy import text

    try:
        with request.app.state.service.archive.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        up, note = "true", "the archive catalogue answers"
    except Exception as exc:  # an availability probe reports any failure instead of raising it
        up, note = "false", f"the archive catalogue does not answer: {type(exc).__name__}"
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<avail:availability xmlns:avail="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
                    f"<avail:available>{up}</avail:available><avail:note>{escape(note)}</avail:note>"
                    "</avail:availability>\n", media_type="text/xml")


def state_url(request: Request) -> str:
    return request.app.state.service.public_url(request)


routes = [Route("/query", query, methods=["GET", "POST"]), Route("/capabilities", capabilities),
          Route("/availability", availability)]
