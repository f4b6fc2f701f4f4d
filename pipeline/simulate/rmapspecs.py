"""Headers of the reference mappings (rmaps) of our CRDS context, one per instrument and type.

Copied from the real HST context of June 2015 (``hst_0349.pmap``: ``hst_wfc3_*_025x.rmap``,
``hst_acs_*_02xx.rmap``): the same matching parameters (``parkey``), relevance rules, header hooks
(ACS bias preconditioning and fallback, WFC3 custom-subarray bias) and switches, so that crds matches
our headers exactly as it matches archive headers. SATUFILE and SNKCFILE postdate that context; their
headers follow the type specifications shipped with crds (``crds/hst/specs``), with SNKCFILE tied to
DQICORR/SINKCORR, the switches calwf3/calacs read it under. The WFC3 CTE types (PCTETAB, BIACFILE,
DRKCFILE; calwf3 3.3, 2016) are not in that context either (only ACS had PCTETAB/DRKCFILE rmaps, by
DETECTOR and DETECTOR/CCDAMP/CCDGAIN): theirs follow crds's ``wfc3_pctetab/biacfile/drkcfile.rmap``
specs, selection by date alone, relevant when ``DETECTOR == "UVIS" and PCTECORR == "PERFORM"``.
The ACS PCTETAB and DRKCFILE headers are the real ``hst_acs_pctetab_0250`` and
``hst_acs_drkcfile_0278`` ones (DETECTOR; DETECTOR/CCDAMP/CCDGAIN; WFC unless PCTECORR is OMIT).
MDRIZTAB is the real ``*_mdriztab_0250`` rmaps' header (DETECTOR only, relevant unless DRIZCORR is
OMIT; required for ACS, not for WFC3). IDCTAB is the real ``hst_wfc3_idctab_0252`` header (DETECTOR only,
always relevant); its rmap appears with the IR delivery (:mod:`pipeline.simulate.ircrds`).
"""

from __future__ import annotations

from typing import Any

_DATE = ("DATE-OBS", "TIME-OBS")


def _spec(parkey: tuple[str, ...], fmt: str, required: str, switch: str, relevance: str,
          **extra: Any) -> dict[str, Any]:
    return {"parkey": (parkey, _DATE), "reffile_format": fmt, "reffile_required": required,
            "reffile_switch": switch, "rmap_relevance": relevance, **extra}


RMAP_HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "wfc3": {
        "ccdtab": _spec(("DETECTOR",), "TABLE", "NONE", "NONE", "ALWAYS"),
        "oscntab": _spec(("DETECTOR",), "TABLE", "NONE", "NONE", "ALWAYS"),
        "bpixtab": _spec(("DETECTOR",), "TABLE", "NONE", "DQICORR", '(DQICORR != "OMIT")'),
        "crrejtab": _spec(("DETECTOR",), "TABLE", "NONE", "NONE", "ALWAYS"),
        "imphttab": _spec(("DETECTOR",), "TABLE", "NO", "PHOTCORR", '(PHOTCORR != "OMIT")'),
        "biasfile": _spec(
            ("DETECTOR", "CCDAMP", "CCDGAIN", "BINAXIS1", "BINAXIS2", "APERTURE", "CHINJECT", "SUBARRAY"),
            "IMAGE", "YES", "BIASCORR", '((DETECTOR == "UVIS") and (BIASCORR != "OMIT"))',
            extra_keys=("SUBARRAY",), hooks={"precondition_header": "precondition_header_wfc3_biasfile_v1"}),
        "darkfile": _spec(
            ("DETECTOR", "CCDAMP", "BINAXIS1", "BINAXIS2", "CCDGAIN", "SAMP_SEQ", "SUBTYPE"),
            "IMAGE", "NONE", "DARKCORR", '(DARKCORR != "OMIT")',
            parkey_relevance={"binaxis1": '(DETECTOR == "UVIS")', "binaxis2": '(DETECTOR == "UVIS")',
                              "ccdgain": '(DETECTOR == "IR")', "samp_seq": '(DETECTOR == "IR")',
                              "subtype": '(DETECTOR == "IR")'}),
        "pfltfile": _spec(
            ("DETECTOR", "CCDAMP", "FILTER", "BINAXIS1", "BINAXIS2"), "IMAGE", "NONE", "FLATCORR",
            '((FILTER != "BLANK") and (FLATCORR != "OMIT"))',
            parkey_relevance={"binaxis1": '(DETECTOR == "UVIS")', "binaxis2": '(DETECTOR == "UVIS")'}),
        "satufile": _spec(("DETECTOR", "BINAXIS1"), "IMAGE", "YES", "BIASCORR",
                          '((DETECTOR == "UVIS") and (BIASCORR != "OMIT"))'),
        "snkcfile": _spec((), "IMAGE", "YES", "DQICORR", '((DETECTOR == "UVIS") and (DQICORR != "OMIT"))'),
        "nlinfile": _spec(("DETECTOR",), "IMAGE", "NONE", "NONE", '(DETECTOR == "IR")'),
        **{t: _spec((), fmt, "YES", "PCTECORR", '(DETECTOR == "UVIS" and PCTECORR == "PERFORM")')
           for t, fmt in (("pctetab", "TABLE"), ("biacfile", "IMAGE"), ("drkcfile", "IMAGE"))},
        "mdriztab": _spec(("DETECTOR",), "TABLE", "NO", "DRIZCORR", '(DRIZCORR != "OMIT")'),
        "idctab": _spec(("DETECTOR",), "TABLE", "NONE", "NONE", "ALWAYS"),
    },
    "acs": {
        "ccdtab": _spec(("DETECTOR",), "TABLE", "YES", "NONE", '(DETECTOR != "SBC")'),
        "oscntab": _spec(("DETECTOR",), "TABLE", "YES", "NONE", '(DETECTOR != "SBC")'),
        "bpixtab": _spec(("DETECTOR",), "TABLE", "YES", "DQICORR", '(DQICORR != "OMIT")'),
        "crrejtab": _spec(("DETECTOR", "RPTCORR"), "TABLE", "YES", "CRCORR",
                          '((DETECTOR != "SBC") and ((CRCORR != "OMIT") or (RPTCORR != "OMIT")))',
                          extra_keys=("RPTCORR",)),
        "imphttab": _spec(("DETECTOR",), "TABLE", "YES", "PHOTCORR", '(PHOTCORR != "OMIT")'),
        "biasfile": _spec(
            ("DETECTOR", "CCDAMP", "CCDGAIN", "APERTURE", "NAXIS1", "NAXIS2", "LTV1", "LTV2", "XCORNER",
             "YCORNER", "CCDCHIP"), "IMAGE", "YES", "BIASCORR", '((DETECTOR != "SBC") and (BIASCORR != "OMIT"))',
            extra_keys=("XCORNER", "YCORNER", "CCDCHIP"),
            hooks={"fallback_header": "fallback_header_acs_biasfile_v2",
                   "precondition_header": "precondition_header_acs_biasfile_v2"}),
        "darkfile": _spec(("DETECTOR", "CCDAMP", "CCDGAIN"), "IMAGE", "YES", "DARKCORR", '(DARKCORR != "OMIT")',
                          parkey_relevance={"ccdamp": '(DETECTOR != "SBC")', "ccdgain": '(DETECTOR != "SBC")'}),
        "pfltfile": _spec(
            ("DETECTOR", "CCDAMP", "FILTER1", "FILTER2", "OBSTYPE", "FW1OFFST", "FW2OFFST", "FWSOFFST"),
            "IMAGE", "YES", "FLATCORR", '((OBSTYPE != "INTERNAL") and (FLATCORR != "OMIT"))',
            parkey_relevance={"ccdamp": '(DETECTOR != "SBC")',
                              "fw1offst": '(FW1OFFST == "-1.0" or FW1OFFST == "1.0")',
                              "fw2offst": '(FW2OFFST == "-1.0" or FW2OFFST == "1.0")',
                              "fwsoffst": '(FWSOFFST == "-1.0" or FWSOFFST == "1.0")'}),
        "satufile": _spec(("DETECTOR", "CCDAMP"), "IMAGE", "YES", "BIASCORR",
                          '((DETECTOR != "SBC") and (BIASCORR != "OMIT"))'),
        "snkcfile": _spec(("DETECTOR",), "IMAGE", "YES", "SINKCORR",
                          '((SINKCORR != "OMIT") and (DETECTOR == "WFC"))'),
        "mlintab": _spec(("DETECTOR",), "TABLE", "YES", "GLINCORR", '((DETECTOR == "SBC") and (GLINCORR != "OMIT"))'),
        "cfltfile": _spec(("DETECTOR", "FILTER1", "FILTER2", "OBSTYPE"), "IMAGE", "NO", "NONE",
                          '(DETECTOR == "HRC" and OBSTYPE == "CORONAGRAPHIC")'),
        "spottab": _spec(("DETECTOR", "OBSTYPE"), "TABLE", "NO", "NONE",
                         '(DETECTOR == "HRC" and OBSTYPE == "CORONAGRAPHIC")'),
        "mdriztab": _spec(("DETECTOR",), "TABLE", "YES", "DRIZCORR", '(DRIZCORR != "OMIT")'),
        "pctetab": _spec(("DETECTOR",), "TABLE", "NO", "PCTECORR", '((DETECTOR == "WFC") and (PCTECORR != "OMIT"))'),
        "drkcfile": _spec(("DETECTOR", "CCDAMP", "CCDGAIN"), "IMAGE", "NO", "PCTECORR",
                          '((DETECTOR == "WFC") and (PCTECORR != "OMIT"))',
                          parkey_relevance={"ccdamp": '(DETECTOR != "SBC")', "ccdgain": '(DETECTOR != "SBC")'}),
    },
}
