"""Where an exposure points and the TAN WCS (CD matrix) of each chip it reads.

The two chips sit in one focal plane, chip 1 above chip 2 with a gap. A dither (POSTARG) moves the
telescope so that the target lands ``POSTARG / pixel_scale`` pixels away from the aperture reference
point, so a fixed point on the sky shifts by exactly that many pixels between members. Each chip's
WCS is computed from the same focal plane and every star is rendered through its chip's own header
WCS, so headers and pixels agree by construction. Geometric distortion is not modelled: the WCS is
pure TAN (no SIP, no IDCTAB), which drizzle uses as it is with ``updatewcs=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from pipeline.simulate.geometry import Camera, ChipReadout, Readout


def _wrap180(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def cd_matrix(scale_arcsec: float, orientat_deg: float) -> np.ndarray:
    """CD matrix for square pixels with the image y axis at position angle ``orientat`` (east of north)."""
    s = scale_arcsec / 3600.0
    t = np.radians(orientat_deg)
    return s * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])


def tan_wcs(crval: tuple[float, float], crpix: tuple[float, float], cd: np.ndarray) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    w.wcs.cd = cd
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def chip_reference_pixel(camera: Camera) -> tuple[float, float]:
    """1-based CRPIX of a full chip (the archive's 2048, 1026 for UVIS; 2048, 1024 for WFC)."""
    return camera.nx / 2.0, float(round(camera.ny / 2.0 + 0.01))


def mosaic_y(camera: Camera, chip: int, det_y: float | np.ndarray) -> float | np.ndarray:
    """Focal-plane row of a chip row: chip 2 at the bottom, chip 1 above the gap."""
    return det_y if chip == 2 else det_y + camera.ny + camera.chip_gap


@dataclass(frozen=True)
class Pointing:
    """Target, roll and dither offset of one exposure."""

    ra_targ: float
    dec_targ: float
    pa_v3: float
    postarg: tuple[float, float]  # arcsec along the detector x and y axes

    def orientat(self, camera: Camera) -> float:
        return _wrap180(self.pa_v3 + camera.orient_offset)

    @staticmethod
    def aperture_reference(readout: Readout) -> tuple[float, float]:
        """0-based focal-plane pixel of the aperture reference point: mosaic centre or subarray centre."""
        cam = readout.camera
        if not readout.subarray:
            return (cam.nx - 1) / 2.0, (2 * cam.ny + cam.chip_gap - 1) / 2.0
        part = readout.chips[0]
        x = (part.det_x[0] + part.det_x[-1]) / 2.0
        return x, float(mosaic_y(cam, part.chip, (part.det_y[0] + part.det_y[-1]) / 2.0))

    def aperture_sky(self, readout: Readout) -> tuple[float, float]:
        """RA_APER/DEC_APER: the aperture reference sits ``-POSTARG`` from the target."""
        cam = readout.camera
        cd = cd_matrix(cam.pixel_scale, self.orientat(cam))
        around_target = tan_wcs((self.ra_targ, self.dec_targ), (0.0, 0.0), cd)
        dx, dy = -self.postarg[0] / cam.pixel_scale, -self.postarg[1] / cam.pixel_scale
        ra, dec = around_target.wcs_pix2world([[dx, dy]], 0)[0]
        return float(ra), float(dec)

    def chip_wcs(self, readout: Readout, part: ChipReadout) -> WCS:
        """TAN WCS of the trimmed pixels of ``part`` (CRPIX relative to the readout's first science pixel)."""
        cam = readout.camera
        cd = cd_matrix(cam.pixel_scale, self.orientat(cam))
        ref_x, ref_y = self.aperture_reference(readout)
        around_aperture = tan_wcs(self.aperture_sky(readout), (0.0, 0.0), cd)
        crpix1, crpix2 = chip_reference_pixel(cam)
        offset = (crpix1 - 1 - ref_x, float(mosaic_y(cam, part.chip, crpix2 - 1)) - ref_y)
        crval = around_aperture.wcs_pix2world([offset], 0)[0]
        return tan_wcs((float(crval[0]), float(crval[1])),
                       (crpix1 - part.det_x[0], crpix2 - part.det_y[0]), cd)
