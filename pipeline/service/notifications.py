"""Subscriptions, the per-user notification feed and webhook deliveries, all kept in the site database.

A subscription remembers the version each affected exposure had when the user asked. A worker thread
of the server looks every ``interval`` seconds: when every exposure has a newer version (the
reprocessed one was ingested), it writes one feed row for the user and, if the user registered a
webhook, one delivery row; deliveries are POSTed with retries and exponential back-off, each to a URL
the site's webhook policy still allows (:mod:`pipeline.service.webhooks`), never following a redirect. All state
is in tables, so a restart loses nothing: pending deliveries resume, open subscriptions are checked
again.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.core.config import Site
from pipeline.core.db import Base, engine_for
from pipeline.service import reprocessing
from pipeline.service.webhooks import WebhookPolicy


class SubscriptionRow(Base):
    __tablename__ = "service_subscription"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str] = mapped_column(String(9), index=True)
    exposures: Mapped[list] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)
    fulfilled: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class NotificationRow(Base):
    __tablename__ = "service_notification"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("service_subscription.id"), unique=True)
    dataset: Mapped[str] = mapped_column(String(9))
    payload: Mapped[dict] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)


class WebhookRow(Base):
    __tablename__ = "service_webhook"
    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    updated: Mapped[float] = mapped_column(Float)


class DeliveryRow(Base):
    __tablename__ = "service_delivery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("service_notification.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[float] = mapped_column(Float, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated: Mapped[float] = mapped_column(Float)


_TABLES = [SubscriptionRow.__table__, NotificationRow.__table__, WebhookRow.__table__, DeliveryRow.__table__]
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Notification:
    id: int
    dataset: str
    created: float
    payload: dict[str, Any]
    deliveries: list[dict[str, Any]]

    def as_dict(self) -> dict:
        return asdict(self)


class Notifications:
    """The notification tables of one site, and one pass of the worker (:meth:`step`)."""

    def __init__(self, site: Site, *, backoff: float = 5.0, timeout: float = 5.0) -> None:
        self.site = site
        self.backoff = backoff
        self.timeout = timeout
        self.policy = WebhookPolicy(site.service)
        self.engine = engine_for(site.database_url, site.database.busy_timeout)
        Base.metadata.create_all(self.engine, tables=_TABLES)

    # -- what the API does ---------------------------------------------------------------------
    def subscribe(self, user: str, dataset: str) -> int:
        """A subscription of ``user`` to the next version of ``dataset`` (an open one is reused)."""
        with self.engine.begin() as conn:
            found = conn.execute(select(SubscriptionRow.id).where(
                SubscriptionRow.user == user, SubscriptionRow.dataset == dataset,
                SubscriptionRow.fulfilled.is_(None))).scalar()
            if found is not None:
                return found
            return conn.execute(SubscriptionRow.__table__.insert().values(
                user=user, dataset=dataset, exposures=reprocessing.baseline(self.site, dataset), created=time.time(),
                fulfilled=None)).inserted_primary_key[0]

    def set_webhook(self, user: str, url: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(WebhookRow.__table__.delete().where(WebhookRow.user == user))
            if url:
                conn.execute(WebhookRow.__table__.insert().values(user=user, url=url, updated=time.time()))

    def feed(self, user: str, since: int = 0, limit: int = 100) -> list[Notification]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(NotificationRow).where(NotificationRow.user == user, NotificationRow.id > since)
                                .order_by(NotificationRow.id).limit(limit)).all()
            deliveries: dict[int, list[dict]] = {}
            if rows:
                for d in conn.execute(select(DeliveryRow).where(DeliveryRow.notification_id.in_([r.id for r in rows]))):
                    deliveries.setdefault(d.notification_id, []).append(
                        {"url": d.url, "state": d.state, "attempts": d.attempts, "last_error": d.last_error})
        return [Notification(r.id, r.dataset, r.created, r.payload, deliveries.get(r.id, [])) for r in rows]

    # -- the worker ----------------------------------------------------------------------------
    def step(self) -> tuple[int, int]:
        """Fulfil subscriptions whose new versions arrived, then attempt due deliveries: (notified, delivered)."""
        return self._fulfil(), self._deliver()

    def _fulfil(self) -> int:
        with self.engine.connect() as conn:
            open_rows = conn.execute(select(SubscriptionRow).where(SubscriptionRow.fulfilled.is_(None))).all()
        done = 0
        for sub in open_rows:
            arrived = reprocessing.arrived(self.site, sub.exposures)
            if arrived is None:
                continue
            now = time.time()
            payload = {"event": "new-version", "dataset": sub.dataset, "subscription": sub.id,
                       "versions": [{"dataset": d, "version": v, "crds_context": c} for d, v, c in arrived],
                       "message": f"{sub.dataset}: reprocessed data ingested ("
                                  + ", ".join(f"{d} version {v}" + (f" with {c}" if c else "") for d, v, c in arrived)
                                  + ")"}
            with self.engine.begin() as conn:
                claimed = conn.execute(update(SubscriptionRow).where(SubscriptionRow.id == sub.id,
                                                                     SubscriptionRow.fulfilled.is_(None))
                                       .values(fulfilled=now)).rowcount
                if not claimed:
                    continue
                nid = conn.execute(NotificationRow.__table__.insert().values(
                    user=sub.user, subscription_id=sub.id, dataset=sub.dataset, payload=payload,
                    created=now)).inserted_primary_key[0]
                url = conn.execute(select(WebhookRow.url).where(WebhookRow.user == sub.user)).scalar()
                if url:
                    conn.execute(DeliveryRow.__table__.insert().values(
                        notification_id=nid, url=url, state="pending", attempts=0, next_attempt=now, last_error="",
                        updated=now))
            done += 1
        return done

    def _deliver(self) -> int:
        now = time.time()
        with self.engine.connect() as conn:
            due = conn.execute(select(DeliveryRow.id, DeliveryRow.url, DeliveryRow.attempts, DeliveryRow.next_attempt,
                                      DeliveryRow.notification_id, NotificationRow.payload)
                               .join(NotificationRow, DeliveryRow.notification_id == NotificationRow.id)
                               .where(DeliveryRow.state == "pending", DeliveryRow.next_attempt <= now)).all()
        delivered = 0
        for d in due:
            with self.engine.begin() as conn:  # claim: another server process may look at the same row
                if not conn.execute(update(DeliveryRow).where(DeliveryRow.id == d.id,
                                                              DeliveryRow.next_attempt == d.next_attempt)
                                    .values(next_attempt=now + 60 + self.timeout)).rowcount:
                    continue
            error = self._post(d.url, {**d.payload, "notification": d.notification_id})
            attempts = d.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "updated": time.time(), "last_error": error or ""}
            if error is None:
                values["state"] = "delivered"
                delivered += 1
            elif attempts >= MAX_ATTEMPTS:
                values["state"] = "failed"
            else:
                values["next_attempt"] = time.time() + self.backoff * 2 ** (attempts - 1)
            with self.engine.begin() as conn:
                conn.execute(update(DeliveryRow).where(DeliveryRow.id == d.id).values(**values))
        return delivered

    def _post(self, url: str, payload: dict) -> str | None:
        """POST ``payload`` as JSON; None on a 2xx answer, else why not (a redirect is an answer, not followed)."""
        refused = self.policy.refusal(url)
        if refused is not None:
            return f"refused by the webhook policy: {refused}"[:300]
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "owlpipe-notifier"})
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead a delivery to an address the policy refuses: report it as the HTTP error it is."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class NotifierThread(threading.Thread):
    """Runs :meth:`Notifications.step` every ``interval`` seconds until stopped."""

    def __init__(self, notifications: Notifications, interval: float, log) -> None:
        super().__init__(name="owl-notifier", daemon=True)
        self.notifications = notifications
        self.interval = interval
        self.log = log
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                notified, delivered = self.notifications.step()
                if notified or delivered:
                    self.log(f"notifier: {notified} subscription(s) fulfilled, {delivered} webhook(s) delivered")
            except Exception as exc:  # the worker must survive a bad pass (database busy, ...) and try again
                self.log(f"notifier: pass failed: {type(exc).__name__}: {exc}")
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
