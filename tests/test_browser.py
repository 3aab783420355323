"""The dashboard in a real browser: Playwright drives Debian's Chromium (headless) against
uvicorn serving the app on an SQLite file. A person logs in, opens the cohort matrix and a
plan in bimtek I, submits a form with an error (and sees it inline), then correctly, then
completes the stage with the operator's button and sees the plan advance."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import operations as ops
from engine.application import Engine
from engine.pillars import BUILTIN_ORDER
from engine.roles import Actor, Role
from engine.users import add_user
from engine.web.api import COOKIE, create_app

CHROMIUM = Path(os.environ.get("SMARTCITY_CHROMIUM", "/usr/bin/chromium"))
PROGRAMME = "m100-2026"
REGION, OTHER = "35.76", "13.73"  # Kota Mojokerto (the plan driven), Kota Sawahlunto
SPBE = ("governance", "spbe_assessment")

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} "
                "(apt-get install -y chromium)", allow_module_level=True)


@dataclass
class Live:
    url: str
    engine: Engine
    token: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """uvicorn serving ``create_app(sqlite file)`` in a background thread on a free port,
    with a programme whose Kota Mojokerto plan has bimtek I open and every form of it in
    but governance's SPBE assessment."""
    import uvicorn

    monkeypatch.setenv("SMARTCITY_LOAD_PILLARS", ",".join(BUILTIN_ORDER))
    app = create_app(f"sqlite:///{tmp_path}/dashboard.db")
    engine: Engine = app.state.engine
    operator = Actor(id="op-kominfo", role=Role.OPERATOR)
    engine.create_programme(operator, PROGRAMME, "Menuju 100 Smart City 2026", 2026,
                            [REGION, OTHER])
    for region in (REGION, OTHER):
        ops.enrol(engine, PROGRAMME, region)
    ops.open_stage(engine, PROGRAMME, REGION, "bimtek_1")
    ops.fill_stage(engine, PROGRAMME, REGION, "bimtek_1", seed=5, skip=frozenset({SPBE}))
    token = add_user(engine.store, "op-dashboard", "Operator Dasbor", Role.OPERATOR)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", engine, token)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        engine.close()


@pytest.fixture
def page(live: Live) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        # pages answered 4xx on purpose (a form with errors is 422) are logged too: not those
        expected = "Failed to load resource: the server responded with a status of 4"
        page.on("console", lambda m: problems.append(m.text)
                if m.type == "error" and not m.text.startswith(expected) else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        yield page
        # no script errors, nothing refused by the Content-Security-Policy
        assert problems == []
        context.close()
        browser.close()


def test_log_in_fix_a_form_and_complete_the_stage(live: Live, page: Any) -> None:
    expect = sync_api.expect

    # not logged in: the login page, then the programmes
    page.goto(live.url + "/")
    expect(page).to_have_url(live.url + "/login?next=%2F")
    page.fill("#token", live.token)
    page.click("button:has-text('Masuk')")
    expect(page).to_have_url(live.url + "/")
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # the cohort matrix: Mojokerto is in bimtek I, with only governance missing a form
    page.click("text=Matriks kohort")
    expect(page).to_have_url(f"{live.url}/cohort/{PROGRAMME}")
    row = page.locator(f"tr[data-region='{REGION}']")
    expect(row).to_have_attribute("data-stage", "bimtek_1")
    expect(row.locator("td.current .missing")).to_have_text(["GOV\u00a01"])
    expect(page.locator(f"tr[data-region='{OTHER}']")).to_have_attribute("data-stage",
                                                                          "enrolled")
    expect(page.locator("figure.chart svg")).to_have_count(1)  # no quick win yet

    # the plan, then the SPBE form
    row.locator("th a").click()
    expect(page).to_have_url(f"{live.url}/plan/{PROGRAMME}/{REGION}")
    stage = page.locator("#plan-stage")
    expect(stage).to_have_attribute("data-stage", "bimtek_1")
    expect(stage).to_have_attribute("data-status", "open")
    expect(page.locator("#actions .missing-list")).to_contain_text("spbe_assessment")
    page.click("tr[data-pillar='governance'] >> text=Evaluasi SPBE")
    expect(page.locator("h1")).to_have_text("Evaluasi SPBE")

    # an index of 4.50 has the predicate "memuaskan": the plugin's rule refuses "cukup"
    page.fill("#f-year", "2025")
    page.fill("#f-spbe_index", "4,50")
    page.select_option("#f-predicate", "cukup")
    page.fill("#f-online_services", "87")
    page.click("#submit-form")
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("#f-predicate-errors")).to_contain_text("memuaskan")
    expect(page.locator("#f-predicate")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-spbe_index")).to_have_value("4.50")  # what was typed stays
    expect(page.locator("#f-online_services")).to_have_value("87")
    assert live.engine.plan(PROGRAMME, REGION).form("bimtek_1", *SPBE) is None

    page.select_option("#f-predicate", "memuaskan")
    page.click("#submit-form")
    expect(page).to_have_url(f"{live.url}/plan/{PROGRAMME}/{REGION}")
    expect(page.locator(".flash")).to_contain_text("Evaluasi SPBE")
    entry = live.engine.plan(PROGRAMME, REGION).form("bimtek_1", *SPBE)
    assert entry is not None and entry.data["predicate"] == "memuaskan"

    # every required item is in: the operator completes bimtek I, then starts bimtek II
    expect(page.locator("#actions .ok")).to_be_visible()
    page.click("#action-complete")
    expect(stage).to_have_attribute("data-status", "done")
    expect(stage).to_contain_text("Bimtek I - analisis strategis (selesai)")
    expect(page.locator(".flash")).to_contain_text("selesai")
    page.click("#action-start")
    expect(stage).to_have_attribute("data-stage", "bimtek_2")
    expect(stage).to_contain_text("Bimtek II")
    assert live.engine.plan(PROGRAMME, REGION).stage == "bimtek_2"

    # the matrix follows; and the English switch
    page.click(f"text=Matriks kohort {PROGRAMME}")
    expect(page.locator(f"tr[data-region='{REGION}']")).to_have_attribute("data-stage",
                                                                           "bimtek_2")
    page.click("a.lang")
    expect(page.locator("h1")).to_contain_text("Cohort matrix")
    expect(page.locator("html")).to_have_attribute("lang", "en")
