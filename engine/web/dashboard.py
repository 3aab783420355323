"""The web dashboard: server-rendered pages (Jinja2) on the API's app, no JS build step.

Pages: a login page (an API token becomes the HttpOnly cookie ``smartcity_token``), the
programmes, a cohort matrix (regions x stages, with what is missing per pillar and two
server-drawn SVG charts), a plan page (pillars, quick wins and risk registers, findings,
sessions, evaluations, timeline, stage actions) and forms rendered from the pillar
plugins' JSON Schema with inline errors. Everything goes through the engine as the
logged-in user, so the role rules are those of the API and the CLI.

Indonesian by default, English with ``?lang=en`` (remembered in the ``lang`` cookie); every
string of the interface comes from ``TEXT``. Jinja2 autoescapes everything. Because the
session is a cookie, every POST must come from this site (Origin/Referer, when sent, must
name this host) and carry the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import orjson
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from engine import audit
from engine.application import Engine
from engine.domain import plan as P
from engine.errors import (
    ConcurrencyError,
    FieldError,
    NotFound,
    PermissionDenied,
    TransitionError,
    ValidationError,
)
from engine.pillars import FormSpec
from engine.regions import all_regions
from engine.reports import forms_progress
from engine.roles import PERMISSIONS, REGIONAL_ROLES, Actor
from engine.users import actor_for_token
from engine.web.api import COOKIE, may_read_plan

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LANG_COOKIE = "lang"
FLASH_COOKIE = "smartcity_flash"
LANGS = ("id", "en")
MAX_ROWS = 200  # rows of one repeated group a form may post
MAX_FIELDS = 5000  # inputs of one posted form
ONE_YEAR = 365 * 24 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# ---------------------------------------------------------------------------- language
TEXT: dict[str, dict[str, str]] = {
    "id": {
        "app_title": "Menuju 100 Smart City",
        "skip": "Lewati ke isi",
        "home": "Program",
        "logout": "Keluar",
        "login_title": "Masuk",
        "login_intro": "Tempelkan token API Anda (dicetak sekali oleh `smartcity user add`).",
        "token": "Token API",
        "login_button": "Masuk",
        "login_failed": "Token tidak dikenal atau sudah dinonaktifkan.",
        "signed_in_as": "Masuk sebagai {user} ({role})",
        "switch_lang": "English",
        "role_operator": "Operator kementerian",
        "role_regional_officer": "Petugas daerah",
        "role_reviewer": "Tenaga ahli",
        "role_regent": "Kepala daerah",
        "role_auditor": "Auditor",
        "programmes_title": "Program Menuju 100 Smart City",
        "programme": "Program",
        "year": "Tahun",
        "regions": "Daerah",
        "enrolled_count": "Terdaftar",
        "no_programmes": "Belum ada program.",
        "open_matrix": "Matriks kohort",
        "your_plan": "Masterplan daerah Anda",
        "cohort_title": "Matriks kohort",
        "region": "Daerah",
        "province": "Provinsi",
        "current_stage": "Tahap saat ini",
        "status_done": "selesai",
        "status_open": "berjalan",
        "status_todo": "belum dicapai",
        "not_enrolled": "belum terdaftar",
        "legend": "Keterangan",
        "missing_hint": "Angka per pilar pada tahap berjalan: butir yang masih kurang "
                        "untuk menyelesaikan tahap.",
        "missing_title": "{pillar}: {items}",
        "chart_stages": "Kemajuan kohort: jumlah rencana per tahap",
        "chart_quick_wins": "Quick win per pilar dan tingkat penyelesaian",
        "plans_count": "{n} rencana",
        "qw_note": "{n} quick win, rata-rata {mean}%",
        "no_quick_wins": "Belum ada quick win.",
        "bucket_0": "0-24%",
        "bucket_1": "25-49%",
        "bucket_2": "50-74%",
        "bucket_3": "75-100%",
        "stage_enrolled": "Terdaftar",
        "stage_bimtek_1": "Bimtek I - analisis strategis",
        "stage_bimtek_2": "Bimtek II - program & quick win",
        "stage_bimtek_3": "Bimtek III - draf masterplan",
        "stage_bimtek_4": "Bimtek IV - implementasi",
        "stage_review": "Reviu",
        "stage_approved": "Disetujui kepala daerah",
        "short_enrolled": "Terdaftar",
        "short_bimtek_1": "Bimtek I",
        "short_bimtek_2": "Bimtek II",
        "short_bimtek_3": "Bimtek III",
        "short_bimtek_4": "Bimtek IV",
        "short_review": "Reviu",
        "short_approved": "Disetujui",
        "plan_of": "Masterplan {region}",
        "kind_kabupaten": "Kabupaten",
        "kind_kota": "Kota",
        "head": "Kepala daerah",
        "stage": "Tahap",
        "stage_status": "{stage} ({status})",
        "review_round": "Putaran reviu",
        "pillars": "Pilar dan kelengkapan isian",
        "pillar": "Pilar",
        "completeness": "Isian wajib terkirim (tahap yang sudah dicapai)",
        "forms_of_stage": "Isian",
        "form": "Isian",
        "required": "wajib",
        "optional": "opsional",
        "submitted_n": "terkirim {n}x",
        "not_submitted": "belum dikirim",
        "open_form": "buka",
        "quick_wins": "Quick win",
        "agency": "Perangkat daerah",
        "completion": "Penyelesaian",
        "risk_register": "Register risiko",
        "risk": "Risiko",
        "likelihood": "Kemungkinan",
        "impact": "Dampak",
        "score": "Skor",
        "handling": "Penanganan",
        "mitigation": "Mitigasi",
        "no_risks": "Belum ada risiko tercatat.",
        "advice": "Saran tenaga ahli",
        "presentations": "Paparan",
        "findings": "Temuan reviu",
        "severity": "Tingkat",
        "severity_minor": "ringan",
        "severity_major": "berat",
        "round": "Putaran",
        "reviewer": "Peninjau",
        "text": "Uraian",
        "no_findings": "Belum ada temuan.",
        "sessions": "Sesi bimtek",
        "held_on": "Tanggal",
        "venue": "Tempat",
        "agencies": "Perangkat daerah",
        "institutions": "Lembaga mitra",
        "evaluations": "Evaluasi tahunan",
        "scores": "Skor kematangan",
        "indicators": "Indikator",
        "approval": "Persetujuan kepala daerah",
        "regulation": "Peraturan",
        "in_rpjmd": "Quick win masuk RPJMD",
        "refusals": "Penolakan",
        "timeline": "Riwayat",
        "version": "Versi",
        "when": "Waktu",
        "who": "Oleh",
        "event": "Peristiwa",
        "description": "Keterangan",
        "yes": "ya",
        "no": "tidak",
        "actions": "Tindakan tahap",
        "start_stage": "Mulai {stage}",
        "complete_stage": "Selesaikan {stage}",
        "submit_review": "Ajukan untuk reviu",
        "still_missing": "Masih kurang untuk menyelesaikan {stage}:",
        "nothing_missing": "Semua butir wajib {stage} sudah lengkap.",
        "action_refused": "Tindakan ditolak",
        "flash_form_saved": "Isian \"{form}\" tersimpan.",
        "flash_stage_started": "{stage} dimulai.",
        "flash_stage_completed": "{stage} selesai.",
        "flash_review_submitted": "Masterplan diajukan untuk reviu.",
        "flash_review_passed": "Reviu dinyatakan lulus.",
        "flash_returned": "Masterplan dikembalikan untuk perbaikan.",
        "flash_approved": "Masterplan disetujui kepala daerah.",
        "flash_refused": "Persetujuan ditolak; masterplan kembali ke reviu.",
        "action_pass": "Luluskan reviu",
        "action_return": "Kembalikan untuk perbaikan",
        "action_approve": "Setujui masterplan",
        "action_refuse": "Tolak persetujuan",
        "reason": "Alasan",
        "regulation_number": "Nomor Perbup/Perwal",
        "chart_over_time": "Kemajuan kohort dari waktu ke waktu",
        "eval_title": "Evaluasi pasca-persetujuan",
        "eval_chart": "Rata-rata kematangan pilar {year} (1-5) dan penyelesaian quick win",
        "eval_not_open": "Evaluasi tahun ini belum dibuka.",
        "eval_submitted": "Laporan",
        "eval_completion": "Quick win selesai",
        "eval_behind_qw": "Quick win tertinggal",
        "eval_maturity": "Kematangan",
        "eval_trends": "Indikator",
        "eval_status": "Status",
        "eval_on_track": "sesuai jadwal",
        "eval_behind": "tertinggal",
        "eval_links": "Evaluasi",
        "submit": "Kirim isian",
        "add_row": "Tambah baris",
        "remove_row": "Hapus baris ini",
        "row": "Baris {n}",
        "choose": "- pilih -",
        "lines_hint": "Satu butir per baris.",
        "json_hint": "Isi dalam format JSON.",
        "date_hint": "Tanggal (TTTT-BB-HH).",
        "range_hint": "Nilai {low} sampai {high}.",
        "min_hint": "Paling kecil {low}.",
        "decimal_hint": "Angka desimal, misalnya 2.75.",
        "form_not_saved": "Isian belum tersimpan: perbaiki kolom yang ditandai.",
        "fix": "perbaikan",
        "read_only_stage": "Tahap {stage} tidak sedang berjalan: isian ini hanya dapat dibaca.",
        "read_only_role": "Peran Anda tidak dapat mengirim isian.",
        "back_to_plan": "Kembali ke masterplan",
        "back_home": "Kembali ke daftar program",
        "invalid_json": "bukan JSON yang sah",
        "concurrency": "Rencana ini baru diubah pengguna lain: muat ulang lalu kirim lagi.",
        "error_403": "Akses ditolak",
        "error_404": "Tidak ditemukan",
        "error_csrf": "Permintaan ditolak: formulir tidak berasal dari situs ini atau sesi "
                      "sudah berganti. Muat ulang halaman lalu coba lagi.",
        "detail": "Rincian",
    },
    "en": {
        "app_title": "Menuju 100 Smart City",
        "skip": "Skip to content",
        "home": "Programmes",
        "logout": "Log out",
        "login_title": "Log in",
        "login_intro": "Paste your API token (printed once by `smartcity user add`).",
        "token": "API token",
        "login_button": "Log in",
        "login_failed": "Unknown or disabled token.",
        "signed_in_as": "Signed in as {user} ({role})",
        "switch_lang": "Bahasa Indonesia",
        "role_operator": "Ministry operator",
        "role_regional_officer": "Regional officer",
        "role_reviewer": "Expert reviewer",
        "role_regent": "Regent",
        "role_auditor": "Auditor",
        "programmes_title": "Menuju 100 Smart City programmes",
        "programme": "Programme",
        "year": "Year",
        "regions": "Regions",
        "enrolled_count": "Enrolled",
        "no_programmes": "No programme yet.",
        "open_matrix": "Cohort matrix",
        "your_plan": "Your region's masterplan",
        "cohort_title": "Cohort matrix",
        "region": "Region",
        "province": "Province",
        "current_stage": "Current stage",
        "status_done": "done",
        "status_open": "in progress",
        "status_todo": "not reached",
        "not_enrolled": "not enrolled",
        "legend": "Legend",
        "missing_hint": "Numbers per pillar in the current stage: items still missing to "
                        "complete the stage.",
        "missing_title": "{pillar}: {items}",
        "chart_stages": "Cohort progress: plans per stage",
        "chart_quick_wins": "Quick wins by pillar and completion",
        "plans_count": "{n} plans",
        "qw_note": "{n} quick wins, mean {mean}%",
        "no_quick_wins": "No quick wins yet.",
        "bucket_0": "0-24%",
        "bucket_1": "25-49%",
        "bucket_2": "50-74%",
        "bucket_3": "75-100%",
        "stage_enrolled": "Enrolled",
        "stage_bimtek_1": "Bimtek I - strategic analysis",
        "stage_bimtek_2": "Bimtek II - programmes & quick wins",
        "stage_bimtek_3": "Bimtek III - masterplan draft",
        "stage_bimtek_4": "Bimtek IV - implementation",
        "stage_review": "Review",
        "stage_approved": "Approved by the regent",
        "short_enrolled": "Enrolled",
        "short_bimtek_1": "Bimtek I",
        "short_bimtek_2": "Bimtek II",
        "short_bimtek_3": "Bimtek III",
        "short_bimtek_4": "Bimtek IV",
        "short_review": "Review",
        "short_approved": "Approved",
        "plan_of": "Masterplan of {region}",
        "kind_kabupaten": "Regency",
        "kind_kota": "City",
        "head": "Head of region",
        "stage": "Stage",
        "stage_status": "{stage} ({status})",
        "review_round": "Review round",
        "pillars": "Pillars and form completeness",
        "pillar": "Pillar",
        "completeness": "Required forms submitted (stages reached)",
        "forms_of_stage": "Forms",
        "form": "Form",
        "required": "required",
        "optional": "optional",
        "submitted_n": "submitted {n}x",
        "not_submitted": "not submitted",
        "open_form": "open",
        "quick_wins": "Quick wins",
        "agency": "Agency",
        "completion": "Completion",
        "risk_register": "Risk register",
        "risk": "Risk",
        "likelihood": "Likelihood",
        "impact": "Impact",
        "score": "Score",
        "handling": "Handling",
        "mitigation": "Mitigation",
        "no_risks": "No risk recorded yet.",
        "advice": "Expert advice",
        "presentations": "Presentations",
        "findings": "Review findings",
        "severity": "Severity",
        "severity_minor": "minor",
        "severity_major": "major",
        "round": "Round",
        "reviewer": "Reviewer",
        "text": "Text",
        "no_findings": "No findings yet.",
        "sessions": "Bimtek sessions",
        "held_on": "Date",
        "venue": "Venue",
        "agencies": "Agencies",
        "institutions": "Partner institutions",
        "evaluations": "Yearly evaluations",
        "scores": "Maturity scores",
        "indicators": "Indicators",
        "approval": "Approval by the regent",
        "regulation": "Regulation",
        "in_rpjmd": "Quick wins in the RPJMD",
        "refusals": "Refusals",
        "timeline": "Timeline",
        "version": "Version",
        "when": "When",
        "who": "By",
        "event": "Event",
        "description": "Description",
        "yes": "yes",
        "no": "no",
        "actions": "Stage actions",
        "start_stage": "Start {stage}",
        "complete_stage": "Complete {stage}",
        "submit_review": "Submit for review",
        "still_missing": "Still missing to complete {stage}:",
        "nothing_missing": "Every required item of {stage} is in.",
        "action_refused": "Action refused",
        "flash_form_saved": "Form \"{form}\" saved.",
        "flash_stage_started": "{stage} started.",
        "flash_stage_completed": "{stage} completed.",
        "flash_review_submitted": "The masterplan was submitted for review.",
        "flash_review_passed": "The review was passed.",
        "flash_returned": "The masterplan was returned for revision.",
        "flash_approved": "The masterplan was approved by the regent.",
        "flash_refused": "Approval refused; the masterplan is back in review.",
        "action_pass": "Pass the review",
        "action_return": "Return for revision",
        "action_approve": "Approve the masterplan",
        "action_refuse": "Refuse approval",
        "reason": "Reason",
        "regulation_number": "Perbup/Perwal number",
        "chart_over_time": "Cohort progress over time",
        "eval_title": "Evaluation after approval",
        "eval_chart": "Mean pillar maturity {year} (1-5) and quick-win completion",
        "eval_not_open": "This year's evaluation is not open.",
        "eval_submitted": "Report",
        "eval_completion": "Quick wins done",
        "eval_behind_qw": "Quick wins behind",
        "eval_maturity": "Maturity",
        "eval_trends": "Indicators",
        "eval_status": "Status",
        "eval_on_track": "on track",
        "eval_behind": "falling behind",
        "eval_links": "Evaluations",
        "submit": "Submit the form",
        "add_row": "Add a row",
        "remove_row": "Remove this row",
        "row": "Row {n}",
        "choose": "- choose -",
        "lines_hint": "One item per line.",
        "json_hint": "Write it as JSON.",
        "date_hint": "A date (YYYY-MM-DD).",
        "range_hint": "From {low} to {high}.",
        "min_hint": "At least {low}.",
        "decimal_hint": "A decimal number, e.g. 2.75.",
        "form_not_saved": "The form was not saved: correct the marked fields.",
        "fix": "fix",
        "read_only_stage": "Stage {stage} is not in progress: this form is read-only.",
        "read_only_role": "Your role cannot submit forms.",
        "back_to_plan": "Back to the masterplan",
        "back_home": "Back to the programmes",
        "invalid_json": "not valid JSON",
        "concurrency": "Someone else changed this plan just now: reload and submit again.",
        "error_403": "Access denied",
        "error_404": "Not found",
        "error_csrf": "Request refused: the form did not come from this site or the session "
                      "changed. Reload the page and try again.",
        "detail": "Detail",
    },
}
FLASH_KEYS = frozenset({"flash_form_saved", "flash_stage_started", "flash_stage_completed",
                        "flash_review_submitted", "flash_review_passed", "flash_returned",
                        "flash_approved", "flash_refused"})


class Translator:
    """``t("key", name=value)``: the string in the page's language (Indonesian fallback)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else "id"

    def __call__(self, key: str, **values: object) -> str:
        text = TEXT[self.lang].get(key) or TEXT["id"].get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in TEXT[self.lang]

    def stage(self, stage: str) -> str:
        return self(f"stage_{stage}") if self.has(f"stage_{stage}") else stage

    def role(self, role: str) -> str:
        return self(f"role_{role}") if self.has(f"role_{role}") else role


def language(request: Request) -> str:
    """``?lang=`` first, then the ``lang`` cookie, else Indonesian."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "id"


# ---------------------------------------------------------------------------- auth and CSRF
class LoginRequired(Exception):
    """No valid session cookie: the page redirects to the login page."""


class CsrfRefused(Exception):
    """A POST that did not come from this site (or lacks the session's CSRF token)."""


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def session_actor(request: Request) -> Actor | None:
    return actor_for_token(engine_of(request).store, request.cookies.get(COOKIE, ""))


def page_actor(request: Request) -> Actor:
    """The logged-in user, or a redirect to the login page."""
    actor = session_actor(request)
    if actor is None:
        raise LoginRequired()
    return actor


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from the cookie, which other sites cannot read."""
    return hmac.new(session_token.encode("utf-8"), b"smartcity-dashboard-csrf",
                    hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True  # not sent (e.g. a non-browser client): the CSRF token decides
    host = request.headers.get("host", "")
    return source != "null" and urlsplit(source).netloc.lower() == host.lower()


async def posted_form(request: Request) -> FormData:
    """The posted form of a logged-in user, once it is known to come from this site."""
    form = await request.form(max_fields=MAX_FIELDS)
    token = request.cookies.get(COOKIE, "")
    sent = form.get("_csrf")
    if not same_origin(request) or not token or not isinstance(sent, str) \
            or not hmac.compare_digest(sent, csrf_token(token)):
        raise CsrfRefused()
    return form


async def login_form(request: Request) -> FormData:
    """The login form (no session yet): only the origin is checked."""
    form = await request.form(max_fields=10)
    if not same_origin(request):
        raise CsrfRefused()
    return form


ActorDep = Annotated[Actor, Depends(page_actor)]
FormDep = Annotated[FormData, Depends(posted_form)]


# ---------------------------------------------------------------------------- rendering
def href(request: Request, *parts: str, **query: str) -> str:
    """A link inside the app (URL-quoted parts, the app's root path in front)."""
    path = request.scope.get("root_path", "") + "/" + "/".join(quote(p, safe="") for p in parts)
    return path + ("?" + urlencode(query) if query else "")


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html", "svg"], default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


ENV = make_environment()


def flash_message(request: Request, t: Translator) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(unquote(raw))
        key, values = data["key"], data.get("values", {})
        if key not in FLASH_KEYS or not isinstance(values, dict):
            return None
        return t(key, **{str(k): str(v) for k, v in values.items()})
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def render(request: Request, template: str, actor: Actor | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A page in the request's language; remembers ``?lang=`` and consumes the flash."""
    lang = language(request)
    t = Translator(lang)
    engine = engine_of(request)
    registry = engine.registry
    flash = flash_message(request, t)
    other = "en" if lang == "id" else "id"
    query = dict(request.query_params)
    query["lang"] = other

    def pillar_name(pillar: str) -> str:
        spec = registry.pillars.get(pillar)
        if spec is None:
            return pillar
        return spec.name_id if lang == "id" else spec.name_en

    def form_title(spec: FormSpec) -> str:
        return spec.title_id if lang == "id" else spec.title_en

    token = request.cookies.get(COOKIE, "")
    html = ENV.get_template(template).render(
        request=request, actor=actor, lang=lang, t=t, flash=flash,
        csrf=csrf_token(token) if actor is not None and token else "",
        href=lambda *parts, **q: href(request, *parts, **q),
        lang_switch=request.url.path + "?" + urlencode(query),
        pillar_name=pillar_name, form_title=form_title, stages=P.STAGES, **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=ONE_YEAR, samesite="lax",
                            httponly=True, path="/")
    if flash is not None or request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(request: Request, *parts: str, flash: tuple[str, dict[str, str]] | None = None
             ) -> RedirectResponse:
    """303 to a page of the dashboard, with a one-time message for it."""
    response = RedirectResponse(href(request, *parts), status_code=303)
    if flash is not None:
        value = quote(json.dumps({"key": flash[0], "values": flash[1]}, ensure_ascii=False))
        response.set_cookie(FLASH_COOKIE, value, max_age=120, httponly=True, samesite="lax",
                            path="/")
    return response


def error_page(request: Request, status: int, title_key: str, detail: str = "") -> HTMLResponse:
    return render(request, "error.html", session_actor(request), status=status,
                  title_key=title_key, detail=detail)


class PageRoute(APIRoute):
    """A dashboard route: engine refusals become HTML pages, a missing session a redirect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(href(request, "login", next=target), status_code=303)
            except CsrfRefused:
                return await run_in_threadpool(error_page, request, 403, "error_403",
                                               Translator(language(request))("error_csrf"))
            except PermissionDenied as exc:
                return await run_in_threadpool(error_page, request, 403, "error_403", str(exc))
            except NotFound as exc:
                return await run_in_threadpool(error_page, request, 404, "error_404", str(exc))

        return guarded


# ---------------------------------------------------------------------------- charts
@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart, laid out here and drawn as inline SVG by the template."""

    title: str
    width: int
    height: int
    axis_x: float
    rects: tuple[Rect, ...]
    labels: tuple[Label, ...]
    legend: tuple[tuple[str, str], ...] = ()  # (css class, text)


Segment = tuple[float, str, str]  # value, css class, tooltip


def bar_chart(title: str, rows: Iterable[tuple[str, list[Segment], str]],
              legend: tuple[tuple[str, str], ...] = (), *, label_width: int = 250,
              bar_width: int = 380, note_width: int = 190, row_height: int = 22,
              gap: int = 8) -> Chart:
    """Rows of (label, stacked segments, note), scaled to the longest row."""
    rows = list(rows)
    longest = max((sum(v for v, _, _ in segs) for _, segs, _ in rows), default=0) or 1
    rects: list[Rect] = []
    labels: list[Label] = []
    y = float(gap)
    for label, segments, note in rows:
        baseline = round(y + row_height * 0.7, 1)
        labels.append(Label(label_width - 8, baseline, label, "end"))
        x = float(label_width)
        for value, css, tip in segments:
            if value <= 0:
                continue
            width = round(bar_width * value / longest, 1)
            rects.append(Rect(round(x, 1), y, width, row_height, css, tip))
            x += width
        labels.append(Label(round(x + 6, 1), baseline, note))
        y += row_height + gap
    return Chart(title, label_width + bar_width + note_width, int(y + gap), label_width,
                 tuple(rects), tuple(labels), legend)


def stage_chart(plans: list[P.PlanState], t: Translator) -> Chart:
    counts = {s: sum(1 for p in plans if p.stage == s) for s in P.STAGES}
    return bar_chart(t("chart_stages"),
                     [(t.stage(s), [(counts[s], f"bar stage-{s}", t("plans_count", n=counts[s]))],
                       t("plans_count", n=counts[s])) for s in P.STAGES])


def quick_win_chart(plans: list[P.PlanState], pillars: list[tuple[str, str]],
                    t: Translator) -> Chart | None:
    """Per pillar: quick wins stacked by completion band (0-24, 25-49, 50-74, 75-100%)."""
    rows = []
    for pillar, name in pillars:
        done = [q.completion_percent for p in plans for q in p.quick_wins.values()
                if q.pillar == pillar]
        if not done:
            continue
        bands = [0, 0, 0, 0]
        for percent in done:
            bands[min(3, percent // 25)] += 1
        mean = round(sum(done) / len(done), 1)
        rows.append((name, [(n, f"bar band-{i}", f"{t(f'bucket_{i}')}: {n}")
                            for i, n in enumerate(bands)],
                     t("qw_note", n=len(done), mean=mean)))
    if not rows:
        return None
    legend = tuple((f"band-{i}", t(f"bucket_{i}")) for i in range(4))
    return bar_chart(t("chart_quick_wins"), rows, legend)


MILESTONES = {"StageCompleted": None, "ReviewPassed": "review", "ApprovedByRegent": "approved"}


def progress_over_time(engine: Engine, plans: list[P.PlanState], t: Translator,
                       buckets: int = 8) -> Chart | None:
    """How many plans had reached each milestone (bimtek I-IV done, review passed,
    approved) at evenly spaced moments from the first event to the last."""
    reached: dict[str, list[str]] = {}  # milestone -> when each plan first reached it
    first, last = None, None
    for plan in plans:
        seen: set[str] = set()
        for ev in engine.history(plan.programme_id, plan.region_code):
            first = min(first or ev.occurred_at, ev.occurred_at)
            last = max(last or ev.occurred_at, ev.occurred_at)
            if ev.event_type not in MILESTONES:
                continue
            key = MILESTONES[ev.event_type] or orjson.loads(ev.payload)["stage"]
            if key not in seen:
                seen.add(key)
                reached.setdefault(key, []).append(ev.occurred_at)
    if not reached or first is None or last is None:
        return None
    start, end = P_time(first), P_time(last)
    step = (end - start) / max(1, buckets - 1)
    moments = [start + step * i for i in range(buckets)]
    order = [s for s in ("bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4", "review", "approved")
             if s in reached]
    rows = []
    for moment in moments:
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        counts = [sum(1 for when in reached[s] if when <= stamp) for s in order]
        label = moment.strftime("%d %b %Y %H:%M")
        segments: list[Segment] = []
        previous = 0
        for s, n in reversed(list(zip(order, counts, strict=True))):
            segments.append((n - previous, f"bar stage-{s}", f"{t.stage(s)}: {n}"))
            previous = n
        rows.append((label, list(reversed(segments)),
                     f"{counts[-1]} {t.stage(order[-1])}"))
    legend = tuple((f"stage-{s}", t.stage(s)) for s in order)
    return bar_chart(t("chart_over_time"), rows, legend)


def P_time(text: str) -> datetime:  # noqa: N802 - the log's fixed-width UTC text
    from engine.chain import parse_time

    return parse_time(text)


# ---------------------------------------------------------------------- forms from JSON Schema
class _Missing:
    """Nothing was entered for a field (so the model's default, or its 'required' error)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Raw(str):
    """Text that did not parse (e.g. broken JSON): kept as typed to show it again."""


@dataclass
class Widget:
    """One node of a rendered form, with its input name (= the engine's field path)."""

    kind: str  # object rows text textarea date integer decimal enum boolean lines choices json
    path: str
    label: str
    required: bool = False
    help: list[str] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    children: list[Widget] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    removable: bool = False  # a row of a repeated group

    @property
    def dom_id(self) -> str:
        return "f-" + (self.path.replace("[", "-").replace("]", "").replace(".", "--")
                       or "form")

    def walk(self) -> Iterable[Widget]:
        yield self
        for child in self.children:
            yield from child.walk()


def show(value: Any) -> str:
    """A JSON value as an input shows it."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def blank(value: Any) -> bool:
    if value is MISSING or value is None or value is False or value == "":
        return True
    if isinstance(value, dict):
        return all(blank(v) for v in value.values())
    if isinstance(value, list):
        return all(blank(v) for v in value)
    return False


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


class SchemaForm:
    """An HTML form for one pillar form's JSON Schema: lays out widgets with values and
    errors, and turns a posted form back into the JSON the engine validates."""

    def __init__(self, schema: dict[str, Any], t: Translator) -> None:
        self.schema = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.t = t

    # ------------------------------------------------------------------ schema
    def resolve(self, node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The node behind ``$ref``/``allOf``/``anyOf``, and whether it may be null."""
        nullable = False
        for _ in range(20):  # references nest a little, never forever
            if "$ref" in node:
                target = self.defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
                node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            elif "allOf" in node and len(node["allOf"]) == 1:
                node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
            elif "anyOf" in node:
                options = [o for o in node["anyOf"] if o.get("type") != "null"]
                nullable = nullable or len(options) < len(node["anyOf"])
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                if len(options) == 1:
                    node = {**options[0], **rest}
                elif {o.get("type") for o in options} == {"number", "string"}:
                    # pydantic's Decimal: a number written as text
                    bounds = {k: v for o in options for k, v in o.items() if k != "type"}
                    return {**bounds, **rest, "type": "number"}, nullable
                else:
                    return {**rest, "anyOf": options}, nullable
            else:
                break
        return node, nullable

    def kind(self, node: dict[str, Any]) -> str:
        if "enum" in node or "const" in node:
            return "enum"
        kind = node.get("type")
        if kind == "object":
            return "object" if node.get("properties") else "json"
        if kind == "array":
            items, _ = self.resolve(node.get("items", {}))
            if items.get("type") == "object" and items.get("properties"):
                return "rows"
            if "enum" in items:
                return "choices"
            if items.get("type") in ("string", "integer", "number"):
                return "lines"
            return "json"
        if kind == "string":
            if node.get("format") == "date":
                return "date"
            return "textarea" if node.get("maxLength", 0) >= 1000 else "text"
        if kind == "integer":
            return "integer"
        if kind == "number":
            return "decimal"
        if kind == "boolean":
            return "boolean"
        return "json"

    @staticmethod
    def enum_values(node: dict[str, Any]) -> list[Any]:
        return list(node["enum"]) if "enum" in node else [node.get("const")]

    # ------------------------------------------------------------------ layout
    def layout(self, values: Any, errors: Iterable[FieldError] = ()
               ) -> tuple[Widget, list[FieldError]]:
        """The widget tree for ``values``; each error sits on the deepest widget whose path
        covers it. Returns (root, errors of the whole form)."""
        root = self.widget(self.schema, "", "", True, values)
        by_path = {w.path: w for w in root.walk()}
        general: list[FieldError] = []
        for err in errors:
            target = self.owner(err.field, by_path)
            if target is None or target is root:
                general.append(err)
            else:
                target.errors.append(err)
        return root, general

    @staticmethod
    def owner(path: str, widgets: dict[str, Widget]) -> Widget | None:
        best: Widget | None = None
        for candidate, widget in widgets.items():
            covers = (candidate == path or path.startswith(candidate + ".")
                      or path.startswith(candidate + "["))
            if candidate and covers and (best is None or len(candidate) > len(best.path)):
                best = widget
        return best

    def widget(self, node: dict[str, Any], name: str, path: str, required: bool,
               value: Any) -> Widget:
        label = node.get("title") or name.replace("_", " ").capitalize()
        node, _nullable = self.resolve(node)
        kind = self.kind(node)
        w = Widget(kind, path, str(label), required, help=self.hints(node, kind))
        if kind == "object":
            given = value if isinstance(value, dict) else {}
            needed = set(node.get("required", ()))
            w.children = [self.widget(sub, prop, join(path, prop), prop in needed,
                                      given.get(prop, MISSING))
                          for prop, sub in node.get("properties", {}).items()]
        elif kind == "rows":
            items = node.get("items", {})
            rows = value if isinstance(value, list) else []
            count = len(rows) or max(1, min(int(node.get("minItems", 1)), MAX_ROWS))
            for i in range(count):
                row = self.widget(items, "", f"{path}[{i}]", True,
                                  rows[i] if i < len(rows) else MISSING)
                row.label = self.t("row", n=i + 1)
                row.help, row.required = [], False
                row.removable = True
                w.children.append(row)
        elif kind == "enum":
            w.options = [show(v) for v in self.enum_values(node)]
            w.selected = [show(value)] if value is not MISSING else []
        elif kind == "choices":
            items, _ = self.resolve(node.get("items", {}))
            w.options = [show(v) for v in self.enum_values(items)]
            w.selected = [show(v) for v in value] if isinstance(value, list) else []
        elif kind == "boolean":
            w.checked = value is True
        elif kind == "lines":
            w.value = "\n".join(show(v) for v in value) if isinstance(value, list) \
                else show(value)
        elif kind == "json":
            w.value = value if isinstance(value, Raw) else (
                "" if value is MISSING else json.dumps(value, ensure_ascii=False, indent=2))
        else:
            w.value = show(value)
        return w

    def hints(self, node: dict[str, Any], kind: str) -> list[str]:
        out = [str(node["description"])] if node.get("description") else []
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        if kind in ("integer", "decimal") and low is not None and high is not None:
            out.append(self.t("range_hint", low=low, high=high))
        elif kind in ("integer", "decimal") and low is not None:
            out.append(self.t("min_hint", low=low))
        extra = {"decimal": "decimal_hint", "date": "date_hint", "lines": "lines_hint",
                 "json": "json_hint"}.get(kind)
        if extra:
            out.append(self.t(extra))
        return out

    # ------------------------------------------------------------------ parsing
    def parse(self, form: FormData, *, keep_blank_rows: bool = False
              ) -> tuple[dict[str, Any], list[FieldError]]:
        """The posted form as the JSON object the engine validates, and what could not even
        be read (broken JSON). Values that do not parse stay as typed: the engine names
        them. Blank rows of repeated groups are dropped unless ``keep_blank_rows``."""
        problems: list[FieldError] = []
        data = self.read(self.schema, "", form, problems, keep_blank_rows, optional=False)
        return (data if isinstance(data, dict) else {}), problems

    def read(self, node: dict[str, Any], path: str, form: FormData,
             problems: list[FieldError], keep: bool, *, optional: bool) -> Any:
        node, nullable = self.resolve(node)
        kind = self.kind(node)
        if kind == "object":
            needed = set(node.get("required", ()))
            out = {}
            for prop, sub in node.get("properties", {}).items():
                value = self.read(sub, join(path, prop), form, problems, keep,
                                  optional=prop not in needed)
                if value is not MISSING:
                    out[prop] = value
            if path and (optional or nullable) and blank(out):
                return MISSING
            return out
        if kind == "rows":
            try:
                count = max(0, min(int(str(form.get(f"_rows.{path}", "0"))), MAX_ROWS))
            except ValueError:
                count = 0
            items = node.get("items", {})
            rows = [self.read(items, f"{path}[{i}]", form, problems, keep, optional=False)
                    for i in range(count)]
            return rows if keep else [r for r in rows if not blank(r)]
        if kind == "choices":
            items, _ = self.resolve(node.get("items", {}))
            return [self.scalar(items, "enum", v) for v in form.getlist(path)
                    if isinstance(v, str) and v]
        if kind == "boolean":
            return form.get(path) in ("true", "on", "1")
        raw = form.get(path)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            return MISSING
        if kind == "lines":
            items, _ = self.resolve(node.get("items", {}))
            sub = self.kind(items)
            return [self.scalar(items, sub, line.strip()) for line in text.splitlines()
                    if line.strip()]
        if kind == "json":
            try:
                return json.loads(text)
            except ValueError:
                problems.append(FieldError(path, self.t("invalid_json")))
                return Raw(text)
        return self.scalar(node, kind, text)

    def scalar(self, node: dict[str, Any], kind: str, text: str) -> Any:
        if kind == "enum":
            return next((v for v in self.enum_values(node) if show(v) == text), text)
        if kind == "integer":
            digits = text.replace(".", "") if _THOUSANDS.fullmatch(text) else text
            try:
                return int(digits)
            except ValueError:
                return text
        if kind == "decimal" and _DECIMAL_COMMA.fullmatch(text):
            return text.replace(",", ".")
        return text


def edit_rows(values: dict[str, Any], action: str) -> dict[str, Any]:
    """Apply ``add:PATH`` (one more row) or ``remove:PATH[i]`` to the posted values."""
    verb, _, path = action.partition(":")
    index = -1
    tokens: list[str | int] = [int(i) if i else n for n, i in
                               re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]
    if verb == "remove" and tokens and isinstance(tokens[-1], int):
        index, tokens = tokens[-1], tokens[:-1]
    elif verb != "add" or not tokens:
        return values
    holder: Any = values
    for token in tokens[:-1]:
        try:
            holder = holder[token]
        except (KeyError, IndexError, TypeError):
            return values
    last = tokens[-1]
    if not isinstance(holder, dict) or not isinstance(last, str):
        return values
    rows = holder.get(last)
    rows = rows if isinstance(rows, list) else []
    if verb == "add" and len(rows) < MAX_ROWS:
        holder[last] = rows + [MISSING]
    elif verb == "remove" and 0 <= index < len(rows):
        holder[last] = rows[:index] + rows[index + 1:]
    return values


# ---------------------------------------------------------------------------- views
@dataclass
class Cell:
    stage: str
    status: str  # done, open, todo
    current: bool = False
    missing: list[tuple[str, str, int, str]] = field(default_factory=list)  # abbr, name, n, items


def stage_cells(plan: P.PlanState | None, missing: dict[str, list[str]],
                names: Callable[[str], str]) -> list[Cell]:
    cells = []
    here = P.STAGES.index(plan.stage) if plan is not None else -1
    for i, stage in enumerate(P.STAGES):
        if plan is None or i > here:
            cells.append(Cell(stage, "todo"))
        elif i < here:
            cells.append(Cell(stage, "done"))
        else:
            cell = Cell(stage, "done" if plan.status == "done" else "open", current=True)
            cell.missing = [(p[:3].upper(), names(p), len(m), "; ".join(m))
                            for p, m in missing.items() if m]
            cells.append(cell)
    return cells


def may_act(actor: Actor, command: str) -> bool:
    return actor.role in PERMISSIONS.get(command, frozenset())


def next_actions(plan: P.PlanState, actor: Actor) -> list[tuple[str, str]]:
    """(action, stage) buttons the actor may press on the plan as it stands."""
    i = P.STAGES.index(plan.stage)
    out: list[tuple[str, str]] = []
    if plan.status == "done" and plan.stage in P.STAGES[:4] and may_act(actor, "StartStage"):
        out.append(("start", P.STAGES[i + 1]))
    if plan.status == "open" and plan.stage in P.BIMTEK_STAGES and \
            may_act(actor, "CompleteStage"):
        out.append(("complete", plan.stage))
    if plan.stage == "bimtek_4" and plan.status == "done" and \
            may_act(actor, "SubmitForReview"):
        out.append(("review", "review"))
    if plan.stage == "review" and plan.status == "open":
        out += [(a, "review") for a, c in (("pass", "PassReview"), ("return", "ReturnForRevision"))
                if may_act(actor, c)]
    if plan.stage == "review" and plan.status == "done" and may_act(actor, "ApproveByRegent") \
            and actor.region == plan.region_code:
        out += [("approve", "approved"), ("refuse", "review")]
    return out


# Actions that need a line of text: (form field, command field, label key).
ACTION_TEXT = {"return": ("text", "reason", "reason"),
               "refuse": ("text", "reason", "reason"),
               "approve": ("text", "regulation_number", "regulation_number")}


def plan_context(engine: Engine, plan: P.PlanState, actor: Actor) -> dict[str, Any]:
    registry = engine.registry
    progress = forms_progress(registry, plan)
    here = P.STAGES.index(plan.stage)
    reached = [s for s in P.BIMTEK_STAGES if P.STAGES.index(s) <= here]
    pillars = []
    for pillar in plan.pillars:
        forms = []
        for stage in reached:
            for spec in registry.forms_for(pillar, stage):
                entry = plan.form(stage, pillar, spec.form)
                forms.append({"spec": spec, "stage": stage,
                              "submissions": entry.submissions if entry else 0,
                              "editable": stage == plan.stage and plan.status == "open"})
        counts = progress.get(pillar, {"required": 0, "submitted": 0})
        percent = round(100 * counts["submitted"] / counts["required"]) \
            if counts["required"] else 100
        pillars.append({"id": pillar, "required": counts["required"],
                        "submitted": counts["submitted"], "percent": percent, "forms": forms})
    gate = registry.gate(plan, plan.stage) \
        if plan.stage in P.BIMTEK_STAGES and plan.status == "open" else None
    quick_wins = sorted(plan.quick_wins.values(),
                        key=lambda q: (plan.pillars.index(q.pillar)
                                       if q.pillar in plan.pillars else 99, q.quick_win_id))
    timeline = list(reversed(audit.timeline(engine.history(plan.programme_id,
                                                           plan.region_code))))
    region = all_regions().get(plan.region_code)
    return {"plan": plan, "pillars": pillars, "gate": gate, "quick_wins": quick_wins,
            "gate_missing": [(p, m) for p, m in (gate or {}).items() if m],
            "timeline": timeline, "province": region.province if region else "",
            "actions": next_actions(plan, actor)}


# ---------------------------------------------------------------------------- routes
def build_router() -> APIRouter:  # noqa: C901 - one flat list of pages reads best
    pages = APIRouter(route_class=PageRoute, include_in_schema=False)

    @pages.get("/login", response_class=HTMLResponse)
    def login_page(request: Request,
                   target: Annotated[str, Query(alias="next")] = "/") -> HTMLResponse:
        return render(request, "login.html", session_actor(request), next=safe_next(target),
                      failed=False)

    @pages.post("/login")
    def login(request: Request,
              form: Annotated[FormData, Depends(login_form)]) -> Response:
        token = str(form.get("token") or "").strip()
        target = safe_next(str(form.get("next") or "/"))
        if actor_for_token(engine_of(request).store, token) is None:
            return render(request, "login.html", None, status=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
        return response

    @pages.post("/logout")
    def logout(request: Request, form: FormDep) -> Response:
        response = RedirectResponse(href(request, "login"), status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @pages.get("/", response_class=HTMLResponse)
    def home(request: Request, actor: ActorDep) -> HTMLResponse:
        engine = engine_of(request)
        rows = []
        for programme in engine.programmes():
            if actor.role in REGIONAL_ROLES and actor.region not in programme.region_codes:
                continue
            enrolled = {p.region_code for p in engine.plans(programme.programme_id)}
            rows.append({"programme": programme, "enrolled": len(enrolled),
                         "own_plan": actor.region in enrolled if actor.region else False})
        return render(request, "index.html", actor, rows=rows)

    @pages.get("/evaluation/{programme_id}/{year}", response_class=HTMLResponse)
    def evaluation_page(request: Request, programme_id: str, year: int,
                        actor: ActorDep) -> HTMLResponse:
        """The yearly evaluation compared across regions (engine.evaluation)."""
        from engine.evaluation import evaluation_report

        engine = engine_of(request)
        programme = engine.programme(programme_id)
        report = evaluation_report(engine, programme_id, year)
        if actor.role in REGIONAL_ROLES:
            report["regions"] = [r for r in report["regions"]
                                 if r["region_code"] == actor.region]
        t = Translator(language(request))
        chart = bar_chart(
            t("eval_chart", year=year),
            [(f"{r['region_name']}", [(r["mean_maturity"] or 0, "bar stage-approved",
                                       f"{r['mean_maturity']}")],
              f"{r['mean_maturity'] or '-'} · {r['mean_completion'] or '-'}%")
             for r in report["regions"]]) if report["regions"] else None
        return render(request, "evaluation.html", actor, programme=programme, report=report,
                      year=year, chart=chart)

    @pages.get("/cohort/{programme_id}", response_class=HTMLResponse)
    def cohort(request: Request, programme_id: str, actor: ActorDep) -> HTMLResponse:
        engine = engine_of(request)
        programme = engine.programme(programme_id)
        t = Translator(language(request))
        codes = [c for c in programme.region_codes
                 if actor.role not in REGIONAL_ROLES or c == actor.region]
        plans = {p.region_code: p for p in engine.plans(programme_id)
                 if p.region_code in codes}
        regions = all_regions()
        lang = t.lang
        registry = engine.registry

        def name_of(pillar: str) -> str:
            spec = registry.pillars.get(pillar)
            return pillar if spec is None else (spec.name_id if lang == "id" else spec.name_en)

        rows = []
        for code in codes:
            plan = plans.get(code)
            missing = registry.gate(plan, plan.stage) if plan is not None and \
                plan.stage in P.BIMTEK_STAGES and plan.status == "open" else {}
            region = regions.get(code)
            rows.append({"code": code, "plan": plan,
                         "name": plan.region_name if plan else
                         (region.display_name if region else code),
                         "province": region.province if region else "",
                         "cells": stage_cells(plan, missing, name_of)})
        visible = list(plans.values())
        pillar_ids = list(dict.fromkeys([*registry.pillars,
                                         *(p for plan in visible for p in plan.pillars)]))
        return render(request, "cohort.html", actor, programme=programme, rows=rows,
                      stage_chart=stage_chart(visible, t),
                      time_chart=progress_over_time(engine_of(request), visible, t),
                      qw_chart=quick_win_chart(visible, [(p, name_of(p)) for p in pillar_ids],
                                               t))

    @pages.get("/plan/{programme_id}/{region_code}", response_class=HTMLResponse)
    def plan_page(request: Request, programme_id: str, region_code: str,
                  actor: ActorDep) -> HTMLResponse:
        may_read_plan(actor, region_code)
        engine = engine_of(request)
        plan = engine.plan(programme_id, region_code)
        return render(request, "plan.html", actor, refused=None, refused_missing={},
                      **plan_context(engine, plan, actor))

    @pages.post("/plan/{programme_id}/{region_code}/stage")
    def stage_action(request: Request, programme_id: str, region_code: str, actor: ActorDep,
                     form: FormDep) -> Response:
        may_read_plan(actor, region_code)
        engine = engine_of(request)
        t = Translator(language(request))
        action, stage = str(form.get("action", "")), str(form.get("stage", ""))
        text = str(form.get("text", "")).strip()
        commands = {"start": ("StartStage", {"stage": stage}, "flash_stage_started"),
                    "complete": ("CompleteStage", {"stage": stage}, "flash_stage_completed"),
                    "review": ("SubmitForReview", {}, "flash_review_submitted"),
                    "pass": ("PassReview", {}, "flash_review_passed"),
                    "return": ("ReturnForRevision", {"reason": text}, "flash_returned"),
                    "approve": ("ApproveByRegent", {"regulation_number": text,
                                                    "quick_wins_in_rpjmd":
                                                        form.get("rpjmd") == "on"},
                                "flash_approved"),
                    "refuse": ("RefuseApproval", {"reason": text}, "flash_refused")}
        status, refused = 200, None
        if action not in commands:
            status, refused = 422, FieldError("action", f"unknown action {action!r}")
        else:
            name, data, flash = commands[action]
            try:
                if action == "return" and text:
                    # the reason is the round's finding, unless the experts recorded one
                    plan = engine.plan(programme_id, region_code)
                    if not any(f.round == plan.review_round for f in plan.findings):
                        engine.execute(actor, programme_id, region_code,
                                       "RecordReviewFinding",
                                       {"finding_id": f"F{plan.review_round}-1",
                                        "text": text, "severity": "major"})
                engine.execute(actor, programme_id, region_code, name, data)
            except PermissionDenied as exc:
                status, refused = 403, exc
            except (TransitionError, ConcurrencyError) as exc:
                status, refused = 409, exc
            except ValidationError as exc:
                status, refused = 422, exc
            else:
                return redirect(request, "plan", programme_id, region_code,
                                flash=(flash, {"stage": t.stage(stage)}))
        plan = engine.plan(programme_id, region_code)
        return render(request, "plan.html", actor, status=status, refused=refused,
                      refused_missing=getattr(refused, "missing", {}),
                      **plan_context(engine, plan, actor))

    form_path = "/plan/{programme_id}/{region_code}/form/{pillar}/{stage}/{form_name}"

    def form_page(request: Request, actor: Actor, programme_id: str, region_code: str,
                  pillar: str, stage: str, form_name: str
                  ) -> tuple[Engine, P.PlanState, FormSpec, SchemaForm]:
        may_read_plan(actor, region_code)
        engine = engine_of(request)
        plan = engine.plan(programme_id, region_code)
        try:
            spec = engine.registry.form_spec(pillar, stage, form_name)
        except ValidationError as exc:
            raise NotFound(str(exc)) from None
        return engine, plan, spec, SchemaForm(spec.json_schema(), Translator(language(request)))

    def show_form(request: Request, actor: Actor, plan: P.PlanState, spec: FormSpec,
                  schema_form: SchemaForm, values: Any, errors: Iterable[FieldError] = (),
                  *, status: int = 200, refused: Exception | None = None,
                  submitted: bool = False) -> HTMLResponse:
        root, general = schema_form.layout(values, errors)
        entry = plan.form(spec.stage, spec.pillar, spec.form)
        return render(request, "form.html", actor, status=status, plan=plan, spec=spec,
                      root=root, general=general, refused=refused, submitted=submitted,
                      entry=entry, description=schema_form.schema.get("description", ""),
                      stage_open=plan.stage == spec.stage and plan.status == "open",
                      may_submit=may_act(actor, "SubmitForm"))

    @pages.get(form_path, response_class=HTMLResponse)
    def form_get(request: Request, programme_id: str, region_code: str, pillar: str,
                 stage: str, form_name: str, actor: ActorDep) -> HTMLResponse:
        _, plan, spec, schema_form = form_page(request, actor, programme_id, region_code,
                                               pillar, stage, form_name)
        entry = plan.form(stage, pillar, form_name)
        return show_form(request, actor, plan, spec, schema_form,
                         entry.data if entry else MISSING)

    @pages.post(form_path)
    def form_post(request: Request, programme_id: str, region_code: str, pillar: str,
                  stage: str, form_name: str, actor: ActorDep, form: FormDep) -> Response:
        engine, plan, spec, schema_form = form_page(request, actor, programme_id,
                                                    region_code, pillar, stage, form_name)
        action = str(form.get("_action") or "submit")
        editing = action.startswith(("add:", "remove:"))
        values, problems = schema_form.parse(form, keep_blank_rows=editing)
        if editing:
            return show_form(request, actor, plan, spec, schema_form, edit_rows(values, action))
        if problems:
            return show_form(request, actor, plan, spec, schema_form, values, problems,
                             status=422, submitted=True)
        try:
            engine.execute(actor, programme_id, region_code, "SubmitForm",
                           {"pillar": pillar, "stage": stage, "form": form_name,
                            "data": values})
        except ValidationError as exc:
            return show_form(request, actor, plan, spec, schema_form, values, exc.errors,
                             status=422, submitted=True)
        except PermissionDenied as exc:
            return show_form(request, actor, plan, spec, schema_form, values, status=403,
                             refused=exc)
        except (TransitionError, ConcurrencyError) as exc:
            return show_form(request, actor, plan, spec, schema_form, values, status=409,
                             refused=exc)
        title = spec.title_id if language(request) == "id" else spec.title_en
        return redirect(request, "plan", programme_id, region_code,
                        flash=("flash_form_saved", {"form": title}))

    return pages


def safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or a full URL) to go to after login."""
    # browsers drop tabs and newlines from URLs: "/\t/evil.example" would become "//evil..."
    if not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ch.isspace() or ord(ch) < 32 for ch in target):
        return "/"
    return target


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard (and its static files) from the API's app."""
    app.include_router(build_router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


__all__ = ["TEXT", "SchemaForm", "Translator", "csrf_token", "mount_dashboard"]
