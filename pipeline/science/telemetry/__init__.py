"""Pod telemetry: CCSDS packet files per exposure and the Data Availability Notice per downlink.

``layout`` fixes the bytes (see ``docs/pod-format.md``), ``encode`` is the spacecraft side,
``decode`` the ground side (validation, then ccsdspy decoding), ``dan`` the downlink notice.
"""

from pipeline.science.telemetry.decode import DecodedPod, decode_pod, pod_rootname, scan_pod
from pipeline.science.telemetry.encode import encode_exposure, pod_name, write_pod

__all__ = ["DecodedPod", "decode_pod", "encode_exposure", "pod_name", "pod_rootname", "scan_pod",
           "write_pod"]
