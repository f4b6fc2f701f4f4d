"""Before- and after-calibration checks (BC, AC) as tables of named rules."""
