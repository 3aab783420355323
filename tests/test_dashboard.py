"""The web dashboard: login, pages per role, the cohort matrix, forms rendered from the
plugins' JSON Schema (inline errors, nothing written, then recorded), stage actions, the
language switch, escaping and the CSRF checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import FormData

from engine import operations as ops
from engine.application import Engine
from engine.domain import plan as P
from engine.pillars import PillarRegistry
from engine.roles import Actor, Role
from engine.users import add_user
from engine.web.api import COOKIE, create_app
from engine.web.dashboard import (
    LANG_COOKIE,
    TEXT,
    SchemaForm,
    Translator,
    Widget,
    csrf_token,
    edit_rows,
)
from tests.helpers import advance_to

PROGRAMME = "m100-2026"
YEAR = 2026
PONOROGO, WONOSOBO, MOJOKERTO, SAWAHLUNTO = "35.02", "33.07", "35.76", "13.73"
SPBE = f"/plan/{PROGRAMME}/{MOJOKERTO}/form/governance/bimtek_1/spbe_assessment"
SWOT = f"/plan/{PROGRAMME}/{MOJOKERTO}/form/governance/bimtek_1/swot"


class Site:
    """The app over one engine, with a logged-in client per person."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.app = create_app(engine=engine)
        self.tokens = {
            "operator": add_user(engine.store, "op-kominfo", "Operator", Role.OPERATOR),
            "officer": add_user(engine.store, "diskominfo-mojokerto", "Petugas Mojokerto",
                                Role.REGIONAL_OFFICER, MOJOKERTO),
            "other-officer": add_user(engine.store, "diskominfo-wonosobo", "Petugas Wonosobo",
                                      Role.REGIONAL_OFFICER, WONOSOBO),
            "auditor": add_user(engine.store, "itjen", "Auditor", Role.AUDITOR),
        }
        self.clients: dict[str, TestClient] = {}

    def anonymous(self) -> TestClient:
        return TestClient(self.app)

    def __getitem__(self, who: str) -> TestClient:
        if who not in self.clients:
            client = TestClient(self.app)
            client.cookies.set(COOKIE, self.tokens[who])
            self.clients[who] = client
        return self.clients[who]

    def csrf(self, who: str) -> str:
        return csrf_token(self.tokens[who])

    def post(self, who: str, path: str, data: dict[str, Any] | list[tuple[str, str]],
             **kw: Any) -> Any:
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        fields: dict[str, list[str]] = {"_csrf": [self.csrf(who)]}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        return self[who].post(path, data=fields, follow_redirects=False, **kw)

    @property
    def position(self) -> int:
        return self.engine.store.last_position()


@pytest.fixture
def site(engine: Engine, operator: Actor) -> Iterator[Site]:
    """Ponorogo in bimtek III, Wonosobo in bimtek II, Kota Mojokerto with bimtek I open
    and nothing filled, Kota Sawahlunto in the programme but not enrolled."""
    advance_to(engine, operator, PROGRAMME, PONOROGO, "bimtek_3", year=YEAR)
    advance_to(engine, operator, PROGRAMME, WONOSOBO, "bimtek_2", year=YEAR)
    engine.add_region(operator, PROGRAMME, MOJOKERTO)
    engine.add_region(operator, PROGRAMME, SAWAHLUNTO)
    ops.enrol(engine, PROGRAMME, MOJOKERTO)
    ops.open_stage(engine, PROGRAMME, MOJOKERTO, "bimtek_1")
    yield Site(engine)


def matrix_rows(html: str) -> dict[str, tuple[str, str, str]]:
    """region -> (stage, status, stage of the outlined cell) as the matrix shows them."""
    out = {}
    for row in re.findall(r"<tr data-region=.*?</tr>", html, re.S):
        region, stage, status = re.search(
            r'data-region="([^"]*)" data-stage="([^"]*)" data-status="([^"]*)"', row).groups()
        current = re.findall(r'class="cell \w+ current" data-stage="(\w+)"', row)
        out[region] = (stage, status, current[0] if current else "")
    return out


def error_of(html: str, path: str) -> str:
    """The inline errors shown next to the input named ``path``."""
    dom = "f-" + path.replace("[", "-").replace("]", "").replace(".", "--")
    found = re.search(rf'<ul class="errors" id="{re.escape(dom)}-errors">(.*?)</ul>', html,
                      re.S)
    return found.group(1) if found else ""


def input_value(html: str, name: str) -> str | None:
    found = re.search(rf'<input type="text" id="[^"]*" name="{re.escape(name)}" '
                      rf'value="([^"]*)"', html)
    return found.group(1) if found else None


# ---------------------------------------------------------------------------- login
def test_login_sets_an_httponly_cookie_and_logout_clears_it(site: Site) -> None:
    client = site.anonymous()
    away = client.get("/cohort/" + PROGRAMME, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fcohort%2Fm100-2026"
    page = client.get("/login")
    assert page.status_code == 200 and 'name="token"' in page.text

    refused = client.post("/login", data={"token": "sc_wrong"}, follow_redirects=False)
    assert refused.status_code == 401
    assert TEXT["id"]["login_failed"] in refused.text
    assert COOKIE not in refused.headers.get("set-cookie", "")

    done = client.post("/login", data={"token": site.tokens["operator"],
                                       "next": "/cohort/" + PROGRAMME}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/cohort/" + PROGRAMME
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={site.tokens['operator']};")
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert client.get("/").status_code == 200  # the cookie now opens the pages

    # only a path of this site is followed after login
    for target in ("//evil.example/x", "https://evil.example/", "/\t/evil.example",
                   "/\\evil.example"):
        elsewhere = client.post("/login", data={"token": site.tokens["operator"],
                                                "next": target}, follow_redirects=False)
        assert elsewhere.headers["location"] == "/", target

    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', client.get("/").text).group(1)
    out = client.post("/logout", data={"_csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------------------- pages per role
def test_pages_render_for_the_operator(site: Site, registry: PillarRegistry) -> None:
    op = site["operator"]
    home = op.get("/")
    assert home.status_code == 200 and f"/cohort/{PROGRAMME}" in home.text
    assert home.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    cohort = op.get(f"/cohort/{PROGRAMME}")
    assert cohort.status_code == 200 and "<svg" in cohort.text
    assert set(matrix_rows(cohort.text)) == {PONOROGO, WONOSOBO, MOJOKERTO, SAWAHLUNTO}

    plan = op.get(f"/plan/{PROGRAMME}/{PONOROGO}")
    assert plan.status_code == 200
    state = site.engine.plan(PROGRAMME, PONOROGO)
    assert 'data-stage="bimtek_3"' in plan.text
    for q in state.quick_wins.values():  # quick wins with completion bars
        assert f'data-quick-win="{q.quick_win_id}"' in plan.text
        assert f'aria-label="{q.name} {q.completion_percent}%"' in plan.text
    assert "PlanEnrolled" in plan.text and "FormSubmitted" in plan.text  # the timeline
    assert 'id="action-complete"' in plan.text  # the operator may complete bimtek III

    for pillar in state.pillars:  # every form of every stage reached opens
        for stage in P.BIMTEK_STAGES[:3]:
            for spec in registry.forms_for(pillar, stage):
                path = f"/plan/{PROGRAMME}/{PONOROGO}/form/{pillar}/{stage}/{spec.form}"
                assert op.get(path).status_code == 200, path
    assert op.get(f"/plan/{PROGRAMME}/99.99").status_code == 404
    assert op.get(f"/plan/{PROGRAMME}/{PONOROGO}/form/governance/bimtek_1/nope"
                  ).status_code == 404


def test_pages_render_for_the_regional_officer_of_the_region(site: Site) -> None:
    officer = site["officer"]
    home = officer.get("/")
    assert home.status_code == 200 and f"/plan/{PROGRAMME}/{MOJOKERTO}" in home.text
    cohort = officer.get(f"/cohort/{PROGRAMME}")
    assert cohort.status_code == 200
    assert set(matrix_rows(cohort.text)) == {MOJOKERTO}  # only their own region
    plan = officer.get(f"/plan/{PROGRAMME}/{MOJOKERTO}")
    assert plan.status_code == 200 and 'data-stage="bimtek_1"' in plan.text
    assert 'id="action-complete"' not in plan.text  # stage actions are the operator's
    form = officer.get(SPBE)
    assert form.status_code == 200 and 'name="spbe_index"' in form.text
    assert 'id="submit-form" disabled' not in form.text


def test_a_regional_officer_of_another_region_gets_403_and_writes_nothing(site: Site) -> None:
    other = site["other-officer"]
    for path in (f"/plan/{PROGRAMME}/{MOJOKERTO}", SPBE):
        page = other.get(path)
        assert page.status_code == 403, path
        assert TEXT["id"]["error_403"] in page.text
    before = site.position
    posted = site.post("other-officer", SPBE, {"year": "2025", "spbe_index": "2.70",
                                               "predicate": "baik", "online_services": "40"})
    assert posted.status_code == 403
    stage = site.post("other-officer", f"/plan/{PROGRAMME}/{MOJOKERTO}/stage",
                      {"action": "complete", "stage": "bimtek_1"})
    assert stage.status_code == 403
    assert site.position == before


def test_the_auditor_reads_but_cannot_submit(site: Site) -> None:
    auditor = site["auditor"]
    assert auditor.get(f"/plan/{PROGRAMME}/{PONOROGO}").status_code == 200
    form = auditor.get(SPBE)
    assert TEXT["id"]["read_only_role"] in form.text and 'id="submit-form" disabled' in form.text
    before = site.position
    posted = site.post("auditor", SPBE, {"year": "2025", "spbe_index": "2.70",
                                         "predicate": "baik", "online_services": "40"})
    assert posted.status_code == 403 and site.position == before


# ---------------------------------------------------------------------------- cohort matrix
def test_the_matrix_shows_each_region_at_its_stage(site: Site, registry: PillarRegistry
                                                   ) -> None:
    html = site["operator"].get(f"/cohort/{PROGRAMME}").text
    rows = matrix_rows(html)
    assert rows[PONOROGO] == ("bimtek_3", "open", "bimtek_3")
    assert rows[WONOSOBO] == ("bimtek_2", "open", "bimtek_2")
    assert rows[MOJOKERTO] == ("bimtek_1", "open", "bimtek_1")
    assert rows[SAWAHLUNTO] == ("", "", "")  # in the programme, not enrolled
    mojokerto = re.search(rf'<tr data-region="{MOJOKERTO}".*?</tr>', html, re.S).group(0)
    assert 'class="cell done" data-stage="enrolled"' in mojokerto
    assert 'class="cell todo" data-stage="bimtek_2"' in mojokerto
    gate = registry.gate(site.engine.plan(PROGRAMME, MOJOKERTO), "bimtek_1")
    for pillar, missing in gate.items():  # what each pillar still misses, counted
        assert f"{pillar[:3].upper()}&nbsp;{len(missing)}</span>" in mojokerto
    ponorogo = re.search(rf'<tr data-region="{PONOROGO}".*?</tr>', html, re.S).group(0)
    assert 'class="missing"' not in ponorogo  # its bimtek III forms are all in
    # the charts: plans per stage, quick wins per pillar by completion
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 3
    assert TEXT["id"]["chart_stages"] in html and TEXT["id"]["chart_quick_wins"] in html
    assert 'class="bar stage-bimtek_1"' in html and 'class="bar band-' in html


# ---------------------------------------------------------------------------- forms
def test_a_form_with_errors_shows_them_inline_and_writes_nothing_then_records(site: Site
                                                                             ) -> None:
    before = site.position
    bad = site.post("officer", SPBE, {"year": "2025", "spbe_index": "4.50",
                                      "predicate": "cukup", "online_services": "banyak"})
    assert bad.status_code == 422
    assert site.position == before  # nothing written
    assert TEXT["id"]["form_not_saved"] in bad.text
    assert "whole number" in error_of(bad.text, "online_services")
    assert error_of(bad.text, "year") == "" and error_of(bad.text, "predicate") == ""
    assert input_value(bad.text, "online_services") == "banyak"  # kept as typed
    assert input_value(bad.text, "spbe_index") == "4.50"
    assert '<option value="cukup" selected>' in bad.text
    assert 'aria-invalid="true" aria-describedby="f-online_services-errors"' in bad.text

    # once the model accepts it, the plugin's own rules speak (index 4.50 is "memuaskan")
    rule = site.post("officer", SPBE, {"year": "2025", "spbe_index": "4.50",
                                       "predicate": "cukup", "online_services": "12"})
    assert rule.status_code == 422 and site.position == before
    assert "memuaskan" in error_of(rule.text, "predicate")
    assert error_of(rule.text, "online_services") == ""

    good = site.post("officer", SPBE, {"year": "2025", "spbe_index": "4,50",
                                       "predicate": "memuaskan", "online_services": "1.200"})
    assert good.status_code == 303
    assert good.headers["location"] == f"/plan/{PROGRAMME}/{MOJOKERTO}"
    assert site.position == before + 1
    entry = site.engine.plan(PROGRAMME, MOJOKERTO).form("bimtek_1", "governance",
                                                       "spbe_assessment")
    assert entry is not None
    assert entry.data == {"year": 2025, "spbe_index": "4.50", "predicate": "memuaskan",
                          "online_services": 1200}
    officer = site["officer"]
    shown = officer.get(good.headers["location"])
    assert 'class="flash"' in shown.text and "Evaluasi SPBE" in shown.text
    assert 'class="flash"' not in officer.get(good.headers["location"]).text  # once only
    again = officer.get(SPBE)  # prefilled with what was recorded
    assert input_value(again.text, "spbe_index") == "4.50"


def swot_rows(rows: list[tuple[str, str, str, str]]) -> list[tuple[str, str]]:
    data = [("_rows.items", str(len(rows)))]
    for i, (ident, kind, agency, text) in enumerate(rows):
        data += [(f"items[{i}].id", ident), (f"items[{i}].kind", kind),
                 (f"items[{i}].element", "public_services" if ident else ""),
                 (f"items[{i}].agency", agency), (f"items[{i}].text", text)]
    return data


def test_errors_in_repeated_rows_sit_next_to_their_input(site: Site) -> None:
    rows = [("S1", "strength", "DISKOMINFO", "Jaringan fiber"),
            ("W1", "weakness", "NOPE", "SDM terbatas"),
            ("", "", "", ""),  # a blank row is left out
            ("O1", "opportunity", "BAPPEDA", "Dana desa"),
            ("T1", "threat", "BAPPEDA", "")]
    before = site.position
    bad = site.post("operator", SWOT, swot_rows(rows))
    assert bad.status_code == 422 and site.position == before
    # after the blank row is dropped, rows are renumbered and errors follow them
    assert "fill in this field" in error_of(bad.text, "items[3].text")  # the threat's text
    assert error_of(bad.text, "items[2].text") == ""
    assert 'name="_rows.items" value="4"' in bad.text
    assert input_value(bad.text, "items[3].id") == "T1"
    assert input_value(bad.text, "items[1].agency") == "NOPE"

    rows[4] = ("T1", "threat", "BAPPEDA", "Serangan siber")
    rule = site.post("operator", SWOT, swot_rows(rows))  # the pillar's rules: agency codes
    assert rule.status_code == 422 and site.position == before
    assert "not a known agency" in error_of(rule.text, "items[1].agency")
    assert error_of(rule.text, "items[0].agency") == ""

    more = site.post("operator", SWOT, [*swot_rows(rows), ("_action", "add:items")])
    assert more.status_code == 200 and site.position == before  # adding a row writes nothing
    assert 'name="_rows.items" value="6"' in more.text and "items[5].id" in more.text
    fewer = site.post("operator", SWOT, [*swot_rows(rows), ("_action", "remove:items[1]")])
    assert 'name="_rows.items" value="4"' in fewer.text
    assert input_value(fewer.text, "items[1].id") == ""  # the blank row moved up

    rows[1] = ("W1", "weakness", "BAPPEDA", "SDM terbatas")
    good = site.post("operator", SWOT, swot_rows(rows))
    assert good.status_code == 303, good.text
    entry = site.engine.plan(PROGRAMME, MOJOKERTO).form("bimtek_1", "governance", "swot")
    assert entry is not None and [i["id"] for i in entry.data["items"]] == [
        "S1", "W1", "O1", "T1"]


def test_a_form_of_a_stage_not_open_is_read_only(site: Site) -> None:
    path = f"/plan/{PROGRAMME}/{PONOROGO}/form/governance/bimtek_1/spbe_assessment"
    page = site["operator"].get(path)
    assert 'id="submit-form" disabled' in page.text
    before = site.position
    posted = site.post("operator", path, {"year": "2025", "spbe_index": "2.70",
                                          "predicate": "baik", "online_services": "40"})
    assert posted.status_code == 409 and TEXT["id"]["action_refused"] in posted.text
    assert site.position == before


def test_every_form_of_every_pillar_round_trips_through_its_html_form(
        site: Site, registry: PillarRegistry) -> None:
    """Example data of each form, laid out as inputs and posted back as a browser would,
    reads back as the very data the form's model accepts."""
    import random

    plan = site.engine.plan(PROGRAMME, PONOROGO)
    t = Translator("id")
    for spec in registry.forms.values():
        assert spec.example is not None
        clean = spec.model.model_validate(spec.example(plan, random.Random(3))).model_dump(
            mode="json")
        schema_form = SchemaForm(spec.json_schema(), t)
        root, general = schema_form.layout(clean)
        assert general == []
        posted, problems = schema_form.parse(FormData(browser_post(root)))
        assert problems == []
        again = spec.model.model_validate(posted).model_dump(mode="json")
        assert again == clean, (spec.pillar, spec.form)


def browser_post(root: Widget) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser sends for the widgets as rendered."""
    out: list[tuple[str, str]] = []
    for w in root.walk():
        if w.kind == "rows":
            out.append((f"_rows.{w.path}", str(len(w.children))))
        elif w.kind in ("enum",):
            out += [(w.path, v) for v in w.selected[:1]]
        elif w.kind == "choices":
            out += [(w.path, v) for v in w.selected]
        elif w.kind == "boolean":
            out += [(w.path, "true")] if w.checked else []
        elif w.kind != "object":
            out.append((w.path, w.value))
    return out


def test_editing_rows_of_nested_groups() -> None:
    values = {"profiles": [{"risks": [{"risk": "a"}, {"risk": "b"}]}]}
    assert edit_rows(values, "add:profiles[0].risks")["profiles"][0]["risks"][2] is not None
    assert len(values["profiles"][0]["risks"]) == 3
    edit_rows(values, "remove:profiles[0].risks[0]")
    assert values["profiles"][0]["risks"][0] == {"risk": "b"}
    assert edit_rows(values, "remove:nothing[9]") == values  # unknown paths change nothing
    assert edit_rows(values, "drop:profiles") == values


# ---------------------------------------------------------------------------- stage actions
def test_the_operator_completes_a_stage_or_sees_what_is_missing(site: Site) -> None:
    stage_url = f"/plan/{PROGRAMME}/{MOJOKERTO}/stage"
    before = site.position
    refused = site.post("operator", stage_url, {"action": "complete", "stage": "bimtek_1"})
    assert refused.status_code == 409 and site.position == before
    assert TEXT["id"]["action_refused"] in refused.text
    assert "form spbe_assessment" in refused.text and "Tata Kelola Cerdas" in refused.text

    ops.fill_stage(site.engine, PROGRAMME, MOJOKERTO, "bimtek_1", seed=2)
    done = site.post("operator", stage_url, {"action": "complete", "stage": "bimtek_1"})
    assert done.status_code == 303
    plan = site.engine.plan(PROGRAMME, MOJOKERTO)
    assert (plan.stage, plan.status) == ("bimtek_1", "done")
    page = site["operator"].get(done.headers["location"]).text
    assert 'id="action-start"' in page and 'data-status="done"' in page

    started = site.post("operator", stage_url, {"action": "start", "stage": "bimtek_2"})
    assert started.status_code == 303
    assert site.engine.plan(PROGRAMME, MOJOKERTO).stage == "bimtek_2"
    unknown = site.post("operator", stage_url, {"action": "explode", "stage": "bimtek_2"})
    assert unknown.status_code == 422


# ---------------------------------------------------------------------------- language
def test_the_language_switch_shows_english_and_is_remembered(site: Site) -> None:
    op = site["operator"]
    indonesian = op.get(f"/plan/{PROGRAMME}/{PONOROGO}").text
    assert '<html lang="id">' in indonesian and TEXT["id"]["logout"] in indonesian
    assert TEXT["id"]["timeline"] in indonesian and "Tata Kelola Cerdas" in indonesian

    english = op.get(f"/plan/{PROGRAMME}/{PONOROGO}?lang=en")
    assert english.cookies.get(LANG_COOKIE) == "en"
    for key in ("logout", "timeline", "pillars", "quick_wins", "stage_bimtek_3"):
        assert TEXT["en"][key] in english.text, key
    assert '<html lang="en">' in english.text and "Smart Governance" in english.text
    # remembered by the cookie on the next page
    cohort = op.get(f"/cohort/{PROGRAMME}").text
    assert TEXT["en"]["chart_stages"] in cohort and TEXT["en"]["status_done"] in cohort
    form = op.get(SPBE).text
    assert "SPBE (e-government) assessment" in form and TEXT["en"]["submit"] in form
    assert '<html lang="id">' in op.get("/?lang=id").text


def test_both_languages_have_every_string() -> None:
    assert set(TEXT["id"]) == set(TEXT["en"])
    assert all(TEXT[lang][k].strip() for lang in TEXT for k in TEXT[lang])


# ---------------------------------------------------------------------------- safety
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_text_is_escaped_everywhere(site: Site, operator: Actor) -> None:
    engine = site.engine
    engine.create_programme(operator, "evil-2026", "Evil " + HOSTILE, YEAR, [PONOROGO])
    officer = ops.officer_of(WONOSOBO)
    engine.execute(officer, PROGRAMME, WONOSOBO, P.ProposeQuickWin(
        quick_win_id="EVIL-1", pillar="governance", name=HOSTILE, agency="DISKOMINFO",
        description=HOSTILE))
    posted = site.post("operator", SPBE, {"year": HOSTILE, "spbe_index": "2.70",
                                          "predicate": HOSTILE, "online_services": "1"})
    assert posted.status_code == 422
    op = site["operator"]
    pages = [op.get("/").text, op.get(f"/plan/{PROGRAMME}/{WONOSOBO}").text, posted.text,
             op.get(f"/cohort/{PROGRAMME}").text,
             op.get(f"/plan/{PROGRAMME}/{WONOSOBO}?lang=" + HOSTILE).text]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[1]
    assert input_value(posted.text, "year") == "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" \
        "&lt;img src=x onerror=alert(1)&gt;"


def test_posts_need_the_session_csrf_token_and_this_origin(site: Site) -> None:
    data = {"year": "2025", "spbe_index": "2.70", "predicate": "baik", "online_services": "4"}
    before = site.position
    officer = site["officer"]
    no_token = officer.post(SPBE, data=data, follow_redirects=False)
    assert no_token.status_code == 403 and TEXT["id"]["error_csrf"] in no_token.text
    wrong = officer.post(SPBE, data={**data, "_csrf": site.csrf("operator")},
                         follow_redirects=False)
    assert wrong.status_code == 403
    foreign = site.post("officer", SPBE, data, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    referer = site.post("officer", SPBE, data,
                        headers={"Referer": "https://evil.example/form"})
    assert referer.status_code == 403
    login = site.anonymous().post("/login", data={"token": site.tokens["officer"]},
                                  headers={"Origin": "https://evil.example"},
                                  follow_redirects=False)
    assert login.status_code == 403
    assert site.position == before
    same = site.post("officer", SPBE, data, headers={"Origin": "http://testserver"})
    assert same.status_code == 303 and site.position == before + 1


def test_the_dashboard_stays_out_of_the_openapi_document(site: Site) -> None:
    paths = site.anonymous().get("/openapi.json").json()["paths"]
    assert all(p.startswith("/api/") for p in paths)
    css = site.anonymous().get("/static/dashboard.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_review_and_approval_from_the_plan_page(site: Site) -> None:
    """The expert returns the plan, passes it later; its own regent approves it; other
    people see no such buttons. Progress over time is charted on the cohort page."""
    engine = site.engine
    operator = Actor(id="op", role=Role.OPERATOR)
    advance_to(engine, operator, PROGRAMME, PONOROGO, "bimtek_4", year=YEAR)
    assert ops.close_stage(engine, PROGRAMME, PONOROGO, "bimtek_4").completed
    engine.execute(ops.officer_of(PONOROGO), PROGRAMME, PONOROGO, "SubmitForReview")
    site.tokens["reviewer"] = add_user(engine.store, "tenaga-ahli", "Tenaga Ahli",
                                       Role.REVIEWER)
    site.tokens["regent"] = add_user(engine.store, "bupati-ponorogo", "Bupati Ponorogo",
                                     Role.REGENT, PONOROGO)
    page = f"/plan/{PROGRAMME}/{PONOROGO}"
    assert 'id="action-return"' in site["reviewer"].get(page).text
    assert 'id="action-return"' not in site["auditor"].get(page).text
    action = f"{page}/stage"
    empty = site.post("reviewer", action, {"action": "return", "stage": "review", "text": ""})
    assert empty.status_code == 422 and engine.plan(PROGRAMME, PONOROGO).stage == "review"
    back = site.post("reviewer", action, {"action": "return", "stage": "review",
                                          "text": "Lengkapi tonggak capaian"})
    assert back.status_code == 303
    assert engine.plan(PROGRAMME, PONOROGO).stage == "bimtek_4"
    assert ops.close_stage(engine, PROGRAMME, PONOROGO, "bimtek_4").completed
    engine.execute(ops.officer_of(PONOROGO), PROGRAMME, PONOROGO, "SubmitForReview")
    assert site.post("reviewer", action, {"action": "pass", "stage": "review"}
                     ).status_code == 303
    regent_page = site["regent"].get(page).text
    assert 'id="action-approve"' in regent_page and 'id="action-refuse"' in regent_page
    assert site.post("regent", action, {"action": "approve", "stage": "approved",
                                        "text": "Perbup No. 9 Tahun 2026", "rpjmd": "on"}
                     ).status_code == 303
    plan = engine.plan(PROGRAMME, PONOROGO)
    assert plan.stage == "approved" and plan.approval is not None
    assert plan.approval.regulation_number == "Perbup No. 9 Tahun 2026"
    assert plan.approval.quick_wins_in_rpjmd and plan.approval.regent == "bupati-ponorogo"
    cohort = site["operator"].get(f"/cohort/{PROGRAMME}?lang=en").text
    assert "Cohort progress over time" in cohort


def test_evaluation_page_compares_regions(site: Site) -> None:
    engine = site.engine
    operator = Actor(id="op", role=Role.OPERATOR)
    for region in (PONOROGO, WONOSOBO):
        advance_to(engine, operator, PROGRAMME, region, "bimtek_4", year=YEAR)
        assert ops.close_stage(engine, PROGRAMME, region, "bimtek_4").completed
        ops.review(engine, PROGRAMME, region, return_first=False)
        ops.approve(engine, PROGRAMME, region, YEAR)
    ops.open_evaluation(engine, PROGRAMME, YEAR + 1)
    ops.simulate_evaluation(engine, PROGRAMME, PONOROGO, YEAR + 1, seed=1)
    cohort = site["operator"].get(f"/cohort/{PROGRAMME}").text
    assert f'/evaluation/{PROGRAMME}/{YEAR + 1}' in cohort
    page = site["operator"].get(f"/evaluation/{PROGRAMME}/{YEAR + 1}?lang=en")
    assert page.status_code == 200
    html = page.text
    assert f'data-region="{PONOROGO}"' in html and f'data-region="{WONOSOBO}"' in html
    assert f'data-region="{WONOSOBO}" data-behind="yes"' in html  # it did not report
    assert "no 2027 evaluation submitted" in html
    officer = site["officer"].get(f"/evaluation/{PROGRAMME}/{YEAR + 1}").text
    assert f'data-region="{PONOROGO}"' not in officer  # regional users see their own only
    closed = site["operator"].get(f"/evaluation/{PROGRAMME}/{YEAR + 5}?lang=en").text
    assert "evaluation is not open" in closed
