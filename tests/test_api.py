"""The HTTP API: a whole plan through it, every role refusal (403, nothing written),
invalid input (422 naming the field, nothing written), tokens, the OpenAPI document,
and Schemathesis finding no server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import operations as ops
from engine.application import Engine
from engine.roles import Actor, Role
from engine.store.schema import users
from engine.users import add_user, hash_token
from engine.web.api import create_app
from tests.helpers import advance_to
from tests.test_roles import EXPECTED

PROGRAMME = "m100-2026"
REGION = "35.02"
OTHER = "33.07"
BASE = f"/api/plans/{PROGRAMME}/{REGION}"

PEOPLE: dict[str, tuple[str, Role, str | None]] = {
    "operator": ("op-kominfo", Role.OPERATOR, None),
    "officer-own": ("diskominfo-ponorogo", Role.REGIONAL_OFFICER, REGION),
    "officer-other": ("diskominfo-wonosobo", Role.REGIONAL_OFFICER, OTHER),
    "reviewer": ("tenaga-ahli", Role.REVIEWER, None),
    "regent-own": ("bupati-ponorogo", Role.REGENT, REGION),
    "regent-other": ("bupati-wonosobo", Role.REGENT, OTHER),
    "auditor": ("itjen", Role.AUDITOR, None),
}
COLUMNS = tuple(PEOPLE)


class Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.client = TestClient(create_app(engine=engine))
        self.tokens = {who: add_user(engine.store, uid, uid.replace("-", " ").title(), role,
                                     region)
                       for who, (uid, role, region) in PEOPLE.items()}

    def __call__(self, who: str, method: str, path: str, json: Any = None,
                 **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        return self.client.request(method, path, json=json, headers=headers, **kw)


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    yield Api(engine)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


# ---------------------------------------------------------------------------- a whole plan
def test_a_plan_from_programme_to_evaluation_through_the_api(api: Api) -> None:
    ok(api("operator", "POST", "/api/programmes", {"programme_id": PROGRAMME,
                                                    "name": "Menuju 100 Smart City 2026",
                                                    "year": 2026, "region_codes": [REGION]}),
       201)
    ok(api("operator", "POST", f"/api/programmes/{PROGRAMME}/regions",
           {"region_code": OTHER}), 201)
    ok(api("operator", "PUT", f"/api/programmes/{PROGRAMME}/schedule/bimtek_1",
           {"deadline": "2026-03-27", "session_start": "2026-03-02",
            "session_end": "2026-03-03"}))
    listed = ok(api("auditor", "GET", "/api/programmes"))
    assert [p["programme_id"] for p in listed] == [PROGRAMME]
    assert ok(api("reviewer", "GET", f"/api/programmes/{PROGRAMME}"))["region_codes"] == [
        REGION, OTHER]
    ok(api("operator", "POST", f"{BASE}/enrol"), 201)
    ok(api("operator", "POST", f"{BASE}/stages/bimtek_1/start"))
    gate = ok(api("officer-own", "GET", f"{BASE}/stages/bimtek_1/gate"))
    assert gate["governance"]  # forms still missing
    schemas = ok(api("officer-own", "GET", "/api/forms/governance/bimtek_1"))
    assert {s["form"] for s in schemas} >= {"readiness", "swot"}
    engine = api.engine
    plan = engine.plan(PROGRAMME, REGION)
    for pillar in plan.pillars:  # fill bimtek I through the API as the region's officer
        for spec in engine.registry.forms_for(pillar, "bimtek_1"):
            assert spec.example is not None
            data = spec.example(engine.plan(PROGRAMME, REGION), __import__("random").Random(1))
            ok(api("officer-own", "POST", f"{BASE}/forms",
                   {"pillar": pillar, "stage": "bimtek_1", "form": spec.form, "data": data}))
    ok(api("operator", "POST", f"{BASE}/stages/bimtek_1/complete"))
    ok(api("operator", "POST", f"{BASE}/sessions", {
        "stage": "bimtek_1", "held_on": "2026-03-03", "venue": "Pendopo Ponorogo",
        "agencies": ["BAPPEDA"], "institutions": [{"name": "Polres Ponorogo",
                                                   "kind": "police"}]}))
    # the rest of the way through the engine's operations, then review and approval via API
    advance_to(engine, Actor(id="op", role=Role.OPERATOR), PROGRAMME, REGION, "bimtek_4",
               year=2026)
    qid = sorted(engine.plan(PROGRAMME, REGION).quick_wins)[0]
    ok(api("officer-own", "POST", f"{BASE}/quick-wins/{qid}/progress",
           {"completion_percent": 100, "evidence": "https://ponorogo.go.id"}))
    ok(api("officer-own", "POST", f"{BASE}/quick-wins/{qid}/risks", {
        "risk_id": "R-API", "description": "Sinyal lemah", "likelihood": 2, "impact": 2,
        "handling": "dipantau"}))
    ok(api("operator", "POST", f"{BASE}/stages/bimtek_4/complete"))
    ok(api("officer-own", "POST", f"{BASE}/review/submit"))
    ok(api("reviewer", "POST", f"{BASE}/review/findings",
           {"finding_id": "F1", "text": "Target belum terukur", "pillar": "economy"}))
    ok(api("reviewer", "POST", f"{BASE}/review/return", {"reason": "Perbaiki target"}))
    ok(api("operator", "POST", f"{BASE}/stages/bimtek_4/complete"))
    ok(api("officer-own", "POST", f"{BASE}/review/submit"))
    ok(api("reviewer", "POST", f"{BASE}/review/pass"))
    ok(api("regent-own", "POST", f"{BASE}/approval/refuse", {"reason": "Belum di RPJMD"}))
    ok(api("reviewer", "POST", f"{BASE}/review/pass"))
    ok(api("regent-own", "POST", f"{BASE}/approval", {
        "regulation_number": "Perbup No. 12 Tahun 2026", "regulation_date": "2026-09-01",
        "quick_wins_in_rpjmd": True}))
    state = ok(api("officer-own", "GET", BASE))
    assert state["stage"] == "approved" and state["review_round"] == 2
    assert state["approval"]["regulation_number"] == "Perbup No. 12 Tahun 2026"
    ok(api("operator", "POST", f"/api/programmes/{PROGRAMME}/evaluations", {"year": 2027}),
       201)
    ok(api("officer-own", "POST", f"{BASE}/evaluations", {
        "year": 2027, "quick_wins": {qid: {"completion_percent": 100, "evidence": "BA"}}}))
    ok(api("reviewer", "POST", f"{BASE}/evaluations/2027/score",
           {"scores": {p: 3 for p in state["pillars"]}, "findings": ["Cukup"]}))
    report = ok(api("operator", "GET", f"/api/programmes/{PROGRAMME}/evaluations/2027"))
    assert report["cohort"]["scored"] == 1
    # reports, calendar and audit
    assert ok(api("operator", "GET", f"/api/programmes/{PROGRAMME}/report"))["stages"][
        "approved"] == 1
    ok(api("operator", "GET", f"/api/programmes/{PROGRAMME}/overdue?as_of=2026-04-01"))
    timeline = ok(api("auditor", "GET", f"{BASE}/timeline?role=regent"))
    assert [e["event_type"] for e in timeline] == ["ApprovalRefused", "ApprovedByRegent"]
    early = ok(api("auditor", "GET", f"{BASE}/replay?version=2"))
    assert (early["stage"], early["status"]) == ("bimtek_1", "open")
    assert ok(api("auditor", "GET", "/api/audit/verify"))["ok"] is True
    assert ok(api("auditor", "GET", f"/api/audit/verify?plan={PROGRAMME}:{REGION}"))["ok"]
    assert ok(api("auditor", "GET", "/api/audit/anchor"))["combined"]
    assert len(ok(api("auditor", "GET", "/api/regions?province=jawa timur"))) == 38
    assert ok(api("regent-own", "GET", "/api/me"))["region"] == REGION


def test_idempotency_key_writes_once(api: Api) -> None:
    body = {"programme_id": PROGRAMME, "name": "Menuju 100", "year": 2026,
            "region_codes": [REGION]}
    first = ok(api("operator", "POST", "/api/programmes", body,
                   headers={"Idempotency-Key": "create-m100-2026"}), 201)
    again = ok(api("operator", "POST", "/api/programmes", body,
                   headers={"Idempotency-Key": "create-m100-2026"}), 201)
    assert first == again and api.engine.store.last_position() == 1


# ---------------------------------------------------------------------------- refusals
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "CreateProgramme": ("POST", "/api/programmes", {"programme_id": "m100-2027",
                                                     "name": "Menuju 100", "year": 2027}),
    "AddRegion": ("POST", f"/api/programmes/{PROGRAMME}/regions", {"region_code": "35.76"}),
    "ScheduleStage": ("PUT", f"/api/programmes/{PROGRAMME}/schedule/bimtek_1",
                      {"deadline": "2026-03-27", "session_start": "2026-03-02",
                       "session_end": "2026-03-03"}),
    "OpenEvaluation": ("POST", f"/api/programmes/{PROGRAMME}/evaluations", {"year": 2027}),
    "EnrolRegion": ("POST", f"{BASE}/enrol", None),
    "StartStage": ("POST", f"{BASE}/stages/bimtek_1/start", None),
    "CompleteStage": ("POST", f"{BASE}/stages/bimtek_1/complete", None),
    "SubmitForm": ("POST", f"{BASE}/forms", {"pillar": "governance", "stage": "bimtek_1",
                                             "form": "swot", "data": {}}),
    "ProposeQuickWin": ("POST", f"{BASE}/quick-wins", {"quick_win_id": "Q1",
                                                       "pillar": "economy", "name": "n",
                                                       "agency": "BAPPEDA"}),
    "RecordQuickWinRisk": ("POST", f"{BASE}/quick-wins/Q1/risks", {
        "risk_id": "R1", "description": "d", "likelihood": 1, "impact": 1, "handling": "h"}),
    "ReportQuickWinProgress": ("POST", f"{BASE}/quick-wins/Q1/progress",
                               {"completion_percent": 5}),
    "PresentQuickWin": ("POST", f"{BASE}/quick-wins/Q1/presentation", {"presenter": "p"}),
    "AdviseQuickWin": ("POST", f"{BASE}/quick-wins/Q1/advice", {"advice_id": "A1",
                                                                "text": "t"}),
    "RecordBimtekSession": ("POST", f"{BASE}/sessions", {"stage": "bimtek_1",
                                                         "held_on": "2026-03-03",
                                                         "venue": "v", "agencies": ["A"]}),
    "SubmitForReview": ("POST", f"{BASE}/review/submit", None),
    "RecordReviewFinding": ("POST", f"{BASE}/review/findings", {"finding_id": "F1",
                                                                "text": "t"}),
    "PassReview": ("POST", f"{BASE}/review/pass", None),
    "ReturnForRevision": ("POST", f"{BASE}/review/return", {"reason": "r"}),
    "ApproveByRegent": ("POST", f"{BASE}/approval", {}),
    "RefuseApproval": ("POST", f"{BASE}/approval/refuse", {"reason": "r"}),
    "SubmitEvaluation": ("POST", f"{BASE}/evaluations", {"year": 2027}),
    "ScoreEvaluation": ("POST", f"{BASE}/evaluations/2027/score", {"scores": {}}),
}


def test_every_command_has_an_endpoint() -> None:
    assert set(ENDPOINTS) == set(EXPECTED)


@pytest.fixture
def enrolled(api: Api) -> Api:
    api.engine.create_programme(Actor(id="op", role=Role.OPERATOR), PROGRAMME, "Menuju 100",
                                2026, [REGION, OTHER])
    ops.enrol(api.engine, PROGRAMME, REGION)
    return api


@pytest.mark.parametrize("command", sorted(ENDPOINTS))
def test_every_forbidden_role_gets_403_and_nothing_is_written(enrolled: Api,
                                                               command: str) -> None:
    method, path, body = ENDPOINTS[command]
    forbidden = [who for who, allowed in zip(COLUMNS, EXPECTED[command], strict=True)
                 if not allowed]
    assert forbidden
    before = enrolled.engine.store.last_position()
    for who in forbidden:
        response = enrolled(who, method, path, body)
        assert response.status_code == 403, (command, who, response.text)
        assert response.json()["error"] == "permission_denied"
    assert enrolled.engine.store.last_position() == before


def test_regional_users_read_only_their_own_plan(enrolled: Api) -> None:
    assert enrolled("officer-own", "GET", BASE).status_code == 200
    denied = enrolled("officer-other", "GET", BASE)
    assert denied.status_code == 403 and "33.07" in denied.json()["message"]
    assert enrolled("regent-other", "GET", f"{BASE}/timeline").status_code == 403


def test_invalid_input_is_422_naming_the_field_and_writes_nothing(enrolled: Api) -> None:
    api = enrolled
    api("operator", "POST", f"{BASE}/stages/bimtek_1/start")
    before = api.engine.store.last_position()
    bad_form = api("officer-own", "POST", f"{BASE}/forms", {
        "pillar": "environment", "stage": "bimtek_1", "form": "waste_baseline",
        "data": {"year": 2025, "generated_tonnes_per_day": "120.5", "reduced_percent": 60,
                 "handled_percent": 70, "landfill": "TPA Ponorogo"}})
    assert bad_form.status_code == 422
    [error] = bad_form.json()["errors"]
    assert (error["pillar"], error["form"], error["field"]) == ("environment",
                                                                "waste_baseline",
                                                                "handled_percent")
    assert error["message"] and error["fix"]
    shape = api("officer-own", "POST", f"{BASE}/quick-wins/Q1/progress",
                {"completion_percent": 140})
    assert shape.status_code == 422
    assert shape.json()["errors"][0]["field"] == "completion_percent"
    stage = api("operator", "POST", f"{BASE}/stages/bimtek_9/start")
    assert stage.status_code == 422 and stage.json()["errors"][0]["field"] == "stage"
    extra = api("operator", "POST", "/api/programmes", {"programme_id": "x", "name": "n",
                                                         "year": 1900, "boss": 1})
    assert extra.status_code == 422
    assert {e["field"] for e in extra.json()["errors"]} >= {"programme_id", "year", "boss"}
    late = api("operator", "POST", f"{BASE}/stages/bimtek_1/complete")
    assert late.status_code == 409 and late.json()["missing"]
    missing = api("operator", "GET", f"/api/plans/{PROGRAMME}/35.76")
    assert missing.status_code == 404
    assert api.engine.store.last_position() == before


def test_tokens_are_required_and_stored_only_as_hashes(api: Api) -> None:
    assert api.client.get("/api/programmes").status_code == 401
    bad = api.client.get("/api/programmes", headers={"Authorization": "Bearer sc_nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
    with api.engine.store.engine.connect() as conn:
        stored = {r.user_id: r.token_hash for r in conn.execute(users.select())}
    for who, token in api.tokens.items():
        uid = PEOPLE[who][0]
        assert stored[uid] == hash_token(token) and token not in stored.values()
    from engine.users import disable_user

    disable_user(api.engine.store, "itjen")
    assert api("auditor", "GET", "/api/programmes").status_code == 401


def test_openapi_document_is_valid(api: Api) -> None:
    from openapi_spec_validator import validate

    document = api.client.get("/openapi.json").json()
    validate(document)
    paths = document["paths"]
    assert "/api/plans/{programme_id}/{region_code}/forms" in paths
    assert "/api/audit/verify" in paths


def test_schemathesis_finds_no_server_error(tmp_path: Any, registry: Any,
                                            operator: Actor) -> None:
    """Generated requests against every operation: never a 500 (on SQLite: the API layer
    is the same whatever the store)."""
    engine = Engine(f"sqlite:///{tmp_path}/fuzz.db", registry=registry)
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    engine.create_programme(operator, PROGRAMME, "Menuju 100", 2026, [REGION])
    ops.enrol(engine, PROGRAMME, REGION)
    ops.open_stage(engine, PROGRAMME, REGION, "bimtek_1")
    app = create_app(engine=engine)
    token = add_user(engine.store, "fuzz-operator", "Fuzz", Role.OPERATOR)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[Any] = []
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, response.status_code,
                                 response.text[:200]))
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect, then report them all
            failures.append((operation.method, operation.path, type(exc).__name__,
                             str(exc)[:300]))
    assert failures == []
    assert len(calls) > 100 and {c for c in calls if c < 300}  # it really exercised the API


def test_quick_win_endpoints_in_bimtek_three(api: Api) -> None:
    engine = api.engine
    advance_to(engine, Actor(id="op", role=Role.OPERATOR), PROGRAMME, REGION, "bimtek_3",
               year=2026)
    created = ok(api("officer-own", "POST", f"{BASE}/quick-wins", {
        "quick_win_id": "ECO-API", "pillar": "economy", "name": "Pasar rakyat digital",
        "agency": "DISKOPUKM", "description": "QRIS di 12 pasar"}), 201)
    assert created["events"][0]["event_type"] == "QuickWinProposed"
    ok(api("officer-own", "POST", f"{BASE}/quick-wins/ECO-API/presentation",
           {"presenter": "Kepala Dinas Koperasi"}))
    ok(api("reviewer", "POST", f"{BASE}/quick-wins/ECO-API/advice",
           {"advice_id": "A1", "text": "Mulai dari pasar induk"}))
    dup = api("reviewer", "POST", f"{BASE}/quick-wins/ECO-API/advice",
              {"advice_id": "A1", "text": "lagi"})
    assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "advice_id"
    state = ok(api("officer-own", "GET", BASE))
    qw = state["quick_wins"]["ECO-API"]
    assert qw["presentations"][0]["agency"] == "DISKOPUKM"
    assert qw["advice"][0]["advisor"] == "tenaga-ahli"
    at = engine.history(PROGRAMME, REGION)[3].occurred_at
    early = ok(api("auditor", "GET", f"{BASE}/replay?at={at}"))
    assert early["version"] == 4
