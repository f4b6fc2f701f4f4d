"""Which HTCondor jobs belong to this site: the constraint every schedd query of owlpipe starts with.

Several sites (live, reprocessing, test) may share one schedd. Their submission ids and
association names overlap, so a query on those alone can find, hold or remove another site's
job. Every job owlpipe submits carries ``OwlSite`` (the site's UUID, :mod:`pipeline.core.siteid`) and
is owned by the submitting user, and every query here is constrained by both.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from sqlalchemy import Engine

from pipeline.core.siteid import site_identity

#: The job attribute naming the site that submitted a DAGMan job or a node job.
SITE_ATTR = "OwlSite"


def current_user() -> str:
    """The user the schedd records as ``Owner`` of the jobs this process submits."""
    return pwd.getpwuid(os.geteuid()).pw_name


def quoted(text: str) -> str:
    """A ClassAd string literal (quotes and backslashes escaped by the bindings)."""
    import classad2

    return classad2.quote(text)


@dataclass(frozen=True)
class Ownership:
    """A site identity and a user: together they say which jobs in a schedd are this site's."""

    site: str
    user: str

    @classmethod
    def of(cls, engine: Engine) -> Ownership:
        return cls(site_identity(engine), current_user())

    def constraint(self, *clauses: str) -> str:
        """``OwlSite == <site> && Owner == <user>`` and each clause (parenthesised)."""
        mine = [f"{SITE_ATTR} == {quoted(self.site)}", f"Owner == {quoted(self.user)}"]
        return " && ".join(mine + [f"({c})" for c in clauses])
