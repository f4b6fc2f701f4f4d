"""Pod telemetry: CCSDS packet files per exposure and the Data Availability Notice per downlink.

``layout`` fixes the bytes (see ``docs/pod-format.md``), ``encode`` is the spacecraft side,
``decode`` the ground side (validation, then ccsdspy decoding), ``dan`` the downlink notice.
"""

from importlib import import_module
from typing import Any

#: Public names and their modules, imported on first use: ``owl-dan-receipt`` reads a DAN before it
#: needs the decoder (numpy, astropy).
_WHERE = {"DecodedPod": "decode", "decode_pod": "decode", "pod_rootname": "decode", "scan_pod": "decode",
          "encode_exposure": "encode", "write_pod": "encode", "pod_name": "layout"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
