"""Release dates and rights: observation + exclusive months, early release, undated data, token scopes."""

from __future__ import annotations

import datetime as dt

from pipeline.service.access import Program, ProgramStore, add_months, rights
from pipeline.service.tokens import Token


def test_release_dates():
    assert add_months(dt.date(2025, 8, 31), 6) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2023, 8, 31), 6) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2025, 11, 15), 14) == dt.date(2027, 1, 15)
    r = rights(None, "11360", "2010-02-11T10:00:00", now="2010-08-10")
    assert (r.release_date, r.data_rights) == ("2010-08-11", "proprietary")
    assert rights(None, "11360", "2010-02-11", now="2010-08-11").public
    long = rights(Program("11360", "ehubble", 12), "11360", "2010-02-11", now="2010-08-11")
    assert long.release_date == "2011-02-11" and not long.public and long.pi == "ehubble"
    undated = rights(None, "11360", None, now="2030-01-01")
    assert undated.release_date is None and not undated.public
    early = rights(Program("11360", None, 6, "2010-03-01"), "11360", "2010-02-11", now="2010-03-01")
    assert early.public and early.release_date == "2010-03-01"


def test_program_store_keeps_what_is_not_given(site):
    store = ProgramStore(site)
    store.set("16001", pi="ehubble")
    store.set("16001", exclusive_months=12)
    assert store.get("16001") == Program("16001", "ehubble", 12, None)
    released = store.set("16001", release_now=True)
    assert released.released == dt.datetime.now(dt.UTC).date().isoformat() and released.pi == "ehubble"


def test_token_scopes():
    user = Token("k", "ehubble", ("11360",), "user", 0.0, None, None)
    assert user.may_read("11360", None) and user.may_read("16001", "EHubble") and not user.may_read("16001", "x")
    assert Token("k", "op", (), "operator", 0.0, None, None).may_read("16001", None)
    assert Token("k", "u", (), "user", 0.0, 1.0, None).state(now=2.0) == "expired"
    assert Token("k", "u", (), "user", 0.0, None, 5.0).state() == "revoked"
