"""The operators' console in a real headless Chromium over a real server and a real site: a simulated
downlink runs through the local executor while the page is open, and the tests assert what a person sees."""

from __future__ import annotations

import json
import os
import threading

import pytest

from pipeline.core.osf import COLUMNS
from pipeline.orchestration.controller import Controller
from pipeline.service.app import create_app
from pipeline.service.audit import AuditLog
from pipeline.service.console import mount
from pipeline.service.tokens import TokenStore
from tests import console_browser as cb
from tests.conftest import require_system
from tests.front_data import write_test_downlink
from tests.orchkit import KIT_SHORT, kit_site
from tests.service_kit import running

ASN, MEMBERS, SINGLE = "ib1f01010", ("ib1f01a1q", "ib1f01a2q"), "ib1f02b1q"
CA, CL = COLUMNS.index("CA"), COLUMNS.index("CL")
#: The letters of every grid row as the page shows them (dataset -> one letter per column).
SHOWN = """return Object.fromEntries([...document.querySelectorAll('#grid tbody tr')].map(tr =>
  [tr.dataset.ds, [...tr.querySelectorAll('td[data-col]')].map(td => td.textContent).join('')]))"""
#: POST an action from the page's own origin (what a forged form or script would try); resolves to the status.
POST = """const done = arguments[arguments.length - 1];
fetch(arguments[0], {method: 'POST', body: new URLSearchParams(arguments[1]), credentials: 'same-origin'})
  .then(r => done(r.status), e => done(String(e)));"""


@pytest.fixture
def driver():
    require_system(cb.missing())
    d = cb.browser()
    d.set_script_timeout(20)
    d.implicitly_wait(10)  # a click that submits a form returns before the next page is there
    yield d
    d.quit()


class Watcher:
    """``owl watch`` in a thread: receives the downlink, submits and runs DAGs, picks up retries."""

    def __init__(self, site) -> None:
        self.site = site
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        ctl = Controller(self.site, executor="local", workflow=str(KIT_SHORT))
        try:
            ctl.watch(interval=0.3, stop=self.halt.is_set)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            ctl.stop()

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.halt.set()
        self.thread.join(timeout=60)


def login(driver, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/console/")
    assert "/console/login" in driver.current_url  # login required by default
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    cb.wait_for(lambda: driver.find_elements(By.ID, "grid"), "the grid after login")


def test_operator_watches_a_downlink_sees_a_failure_and_retries_it(site, tmp_path, monkeypatch, driver):
    from selenium.webdriver.common.by import By

    plan = kit_site(site, tmp_path, monkeypatch)
    plan.write_text(json.dumps({"CA": {SINGLE: ["bad", "sleep:3"]}}))
    token, _ = TokenStore(site).create("ann", role="operator")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with running(create_app(site, mounts=[mount()])) as base:
        # a logged-out browser can neither see the grid's data nor post an action
        driver.get(f"{base}/console/login")
        assert driver.execute_async_script(POST, f"{base}/console/datasets/{SINGLE}/hold", {"csrf": "x"}) == 401

        login(driver, base, token)
        assert driver.execute_async_script(POST, f"{base}/console/datasets/{SINGLE}/hold", {"csrf": "forged"}) == 403
        driver.execute_script("window.sameDocument = 'yes';")  # gone if the page reloads
        assert driver.execute_script(SHOWN) == {}

        write_test_downlink(site.areas.inbox)
        with Watcher(site) as watcher:
            def settled():
                shown = driver.execute_script(SHOWN)
                done = all(shown.get(d, "")[CL] == "c" for d in (ASN, *MEMBERS))
                return shown if done and shown.get(SINGLE, "")[CA:CA + 1] == "e" else None

            shown = cb.wait_for(settled, "the association complete and the singleton failed in CA", timeout=120)
            assert watcher.error is None
            assert driver.execute_script("return window.sameDocument") == "yes"  # updated without reload
            assert driver.execute_script("return document.getElementById('grid').dataset.live") == "events"  # SSE
            assert list(shown) == [ASN, *MEMBERS, SINGLE]  # members right after their association
            cell = driver.find_element(By.CSS_SELECTOR, f'#r-{SINGLE} td[data-col="CA"]')
            assert cell.text == "e" and "Le" in cell.get_attribute("class") and "error" in cell.get_attribute("title")
            assert cell.value_of_css_property("background-color") == "rgba(221, 17, 17, 1)"  # red, and the letter

            # the association folds its members away, from the keyboard too
            from selenium.webdriver.common.keys import Keys

            toggle = driver.find_element(By.CSS_SELECTOR, f"#r-{ASN} button.toggle")
            toggle.send_keys(Keys.ENTER)
            assert not driver.find_element(By.ID, f"r-{MEMBERS[0]}").is_displayed()
            assert toggle.get_attribute("aria-expanded") == "false"
            toggle.send_keys(Keys.SPACE)
            assert driver.find_element(By.ID, f"r-{MEMBERS[0]}").is_displayed()

            grid_png = shots / "grid.png"
            driver.save_screenshot(str(grid_png))
            assert cb.not_blank(grid_png) > 20
            header = driver.find_element(By.CSS_SELECTOR, "#grid thead")
            assert header.is_displayed() and "CA" in header.text and header.rect["y"] < 800

            # the error is one click from its trailer line
            driver.find_element(By.LINK_TEXT, SINGLE).click()
            driver.find_element(By.ID, "first-error").click()
            line = driver.find_element(By.CSS_SELECTOR, ".trailer li:target")
            assert "sev-error" in line.get_attribute("class") and "simulated bad input" in line.text
            assert "bad input data" in driver.find_element(By.CSS_SELECTOR, "p.exit").text
            driver.save_screenshot(str(shots / "dataset.png"))
            assert cb.not_blank(shots / "dataset.png") > 20

            # retry, confirmed, and the row goes back through w/p to c in the open grid
            driver.find_element(By.ID, "retry").click()
            driver.find_element(By.ID, "confirm").click()
            assert "submission" in cb.wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "p.done").text,
                                               "the retry's confirmation")
            driver.find_element(By.LINK_TEXT, "← grid").click()
            driver.execute_script("window.sameDocument = 'yes';")
            seen = []

            def back_to_c():
                ch = driver.execute_script(SHOWN).get(SINGLE, "")[CA:CA + 1]
                if not seen or seen[-1] != ch:
                    seen.append(ch)
                return ch == "c"

            cb.wait_for(back_to_c, "the retried singleton to complete CA", timeout=90, every=0.05)
            assert set(seen) & {"w", "p"}, f"letters seen: {seen}"
            assert driver.execute_script("return window.sameDocument") == "yes"
            # a held DAG shows as held, on its page and in the list of DAGs
            driver.find_element(By.LINK_TEXT, "DAGs").click()
            driver.find_element(By.LINK_TEXT, ASN).click()
            driver.find_element(By.ID, "hold").click()
            driver.find_element(By.ID, "confirm").click()
            state = cb.wait_for(lambda: driver.find_element(By.ID, "dag-state").text, "the DAG's state")
            assert "held" in state
            assert driver.find_element(By.ID, f"node-CA_{MEMBERS[0]}").is_displayed()
            driver.save_screenshot(str(shots / "dag.png"))
            driver.find_element(By.LINK_TEXT, "← DAGs").click()
            assert "held" in driver.find_element(By.LINK_TEXT, ASN).find_element(By.XPATH, "../..").text
            main = driver.find_element(By.TAG_NAME, "main").text
            assert f"Executor pid {os.getpid()}" in main  # the watcher's local executor and its workers

            # on a phone the page does not overflow sideways: the grid scrolls inside its own box
            driver.set_window_size(390, 844)
            driver.get(f"{base}/console/")
            assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert driver.find_element(By.CSS_SELECTOR, f"#r-{SINGLE} a").is_displayed()
            driver.save_screenshot(str(shots / "phone.png"))
            driver.get("about:blank")  # close the grid's event stream before the server stops
        assert watcher.error is None
    actions = [(a.action, a.status, a.user) for a in AuditLog(site).recent()]
    assert ("console-retry", 200, "ann") in actions
    assert ("console-hold", 200, "ann") in actions
    assert ("console-hold", 401, None) in actions and ("console-hold", 403, "ann") in actions
