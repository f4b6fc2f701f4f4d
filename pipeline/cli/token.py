"""``owl token`` (create, list, revoke API tokens) and ``owl audit`` (who read or was refused what)."""

from __future__ import annotations

import time

import click

from pipeline.cli.common import config_option, echo_json, json_option, open_site, reports_errors, site_option


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _store(site_dir, config_file):
    from pipeline.service.tokens import TokenStore

    return TokenStore(open_site(site_dir, config_file))


@click.group()
def token() -> None:
    """API tokens for the archive service (only their hashes are stored)."""


@token.command()
@click.option("--user", required=True, help="who the token is for (matched against program PIs)")
@click.option("--programs", default="", metavar="P,...", help="programs the user is designated for")
@click.option("--expires", metavar="DURATION", help="lifetime, e.g. 30d, 12h, 2w (default: never)")
@click.option("--role", type=click.Choice(["user", "operator"]), default="user", show_default=True,
              help="operator tokens read every program")
@site_option
@config_option
@json_option
@reports_errors
def create(user, programs, expires, role, site_dir, config_file, as_json) -> None:
    """Create a token and print it once (it cannot be shown again)."""
    from pipeline.service.tokens import parse_duration

    text, record = _store(site_dir, config_file).create(
        user, programs=[p.strip() for p in programs.split(",") if p.strip()],
        expires_in=parse_duration(expires) if expires else None, role=role)
    if as_json:
        echo_json({**record.as_dict(), "token": text})
        return
    click.echo(text)
    click.echo(f"token {record.key} for {record.user} ({record.role}; programs {','.join(record.programs) or '-'}; "
               f"expires {_when(record.expires)}): store it now, it is not shown again", err=True)


@token.command(name="list")
@click.option("--user", help="only this user's tokens")
@site_option
@config_option
@json_option
@reports_errors
def list_(user, site_dir, config_file, as_json) -> None:
    """Tokens with their user, programs, role, expiry and state (never the token itself)."""
    tokens = _store(site_dir, config_file).all(user)
    if as_json:
        echo_json([t.as_dict() for t in tokens])
        return
    click.echo(f"{'key':<13} {'user':<16} {'role':<9} {'state':<8} {'created':<17} {'expires':<17} programs")
    for t in tokens:
        click.echo(f"{t.key:<13} {t.user:<16} {t.role:<9} {t.state():<8} {_when(t.created):<17} "
                   f"{_when(t.expires):<17} {','.join(t.programs) or '-'}")


@token.command()
@click.argument("key")
@site_option
@config_option
@reports_errors
def revoke(key, site_dir, config_file) -> None:
    """Revoke the token with this KEY (the 12 hex digits after 'owl_'; see 'owl token list')."""
    record = _store(site_dir, config_file).revoke(key)
    click.echo(f"token {record.key} of {record.user} revoked (console sessions it opened end with it)")


@click.command()
@click.option("--user", help="only this user's accesses")
@click.option("--refused", is_flag=True, help="only refusals (status 400 and above)")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@site_option
@config_option
@json_option
@reports_errors
def audit(user, refused, limit, site_dir, config_file, as_json) -> None:
    """File accesses and refusals of the archive service, newest first."""
    from pipeline.service.audit import AuditLog

    entries = AuditLog(open_site(site_dir, config_file)).recent(limit, user, refused)
    if as_json:
        echo_json([e.as_dict() for e in entries])
        return
    for e in entries:
        click.echo(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(e.time))} {e.status} {e.action:<8} "
                   f"{e.user or '-':<16} {e.client:<15} {e.target}" + (f"  ({e.detail})" if e.detail else ""))
