"""Exports: the approved masterplan (PDF and HTML) and cohort progress (XLSX), built from
plans driven through the real engine; the `smartcity export` commands on the same data."""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import typer
from pypdf import PdfReader
from typer.testing import CliRunner

from engine import operations as ops
from engine.application import Engine
from engine.cli import handle_errors
from engine.cli_export import export_app
from engine.domain import plan as P
from engine.errors import NotFound, TransitionError, ValidationError
from engine.exports import (DRAFT_COPY_LABEL, DRAFT_LABEL, cohort_xlsx, long_date,
                            masterplan_html, masterplan_pdf, pdf_safe, rupiah)
from engine.pillars import PillarRegistry
from engine.reports import cohort_report
from engine.roles import Actor, Role
from tests.helpers import advance_to

PROGRAMME = "m100-2023"
APPROVED = "35.02"  # Kabupaten Ponorogo: approved after one revision
OPEN = "33.07"  # Kabupaten Wonosobo: in bimtek II
ABSENT = "13.73"  # Kota Sawahlunto: in the cohort, not enrolled
REGULATION = "Perbup Ponorogo No. 27 Tahun 2024"
HOSTILE = "<script>alert('x')</script> & \"kutip\" Café"
NON_LATIN = "Pelatihan \u2713 \u6771\u4eac \u0141\u00f3d\u017a"  # check mark, CJK, Polish
RISK_TEXT = "<img src=x onerror=alert(1)> Server pusat data padam"


@dataclass
class Cohort:
    engine: Engine
    url: str


def _build(engine: Engine) -> None:
    """A 3-region cohort: one approved plan (hostile text in a form and a recorded risk),
    one in bimtek II, one not enrolled."""
    operator = Actor(id="op-kominfo", role=Role.OPERATOR)
    advance_to(engine, operator, PROGRAMME, APPROVED, "bimtek_1")
    plan = engine.plan(PROGRAMME, APPROVED)
    readiness = dict(form(plan, "bimtek_1", "governance", "readiness"))
    readiness["problems"] = [HOSTILE, *readiness["problems"]]
    readiness["potentials"] = [NON_LATIN, *readiness["potentials"]]
    engine.execute(ops.officer_of(APPROVED), PROGRAMME, APPROVED, "SubmitForm",
                   {"pillar": "governance", "stage": "bimtek_1", "form": "readiness",
                    "data": readiness})
    advance_to(engine, operator, PROGRAMME, APPROVED, "bimtek_4")
    qw = sorted(engine.plan(PROGRAMME, APPROVED).quick_wins)[0]
    engine.execute(ops.officer_of(APPROVED), PROGRAMME, APPROVED, "RecordQuickWinRisk",
                   {"quick_win_id": qw, "risk_id": "RX-1", "description": RISK_TEXT,
                    "likelihood": 4, "impact": 5, "handling": "Genset dan UPS disiapkan",
                    "mitigation": "Pusat data cadangan di Diskominfo provinsi"})
    assert ops.close_stage(engine, PROGRAMME, APPROVED, "bimtek_4").completed
    ops.review(engine, PROGRAMME, APPROVED, return_first=True)
    engine.execute(ops.regent_of(APPROVED), PROGRAMME, APPROVED, P.ApproveByRegent(
        regulation_number=REGULATION, regulation_date=date(2024, 1, 15),
        quick_wins_in_rpjmd=True))
    advance_to(engine, operator, PROGRAMME, OPEN, "bimtek_2")
    engine.add_region(operator, PROGRAMME, ABSENT)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory,
           registry: PillarRegistry) -> Iterator[Cohort]:
    """Built once for the module: the exports only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('exports')}/events.db"
    engine = Engine(url, registry=registry)
    _build(engine)
    yield Cohort(engine, url)
    engine.close()


def flat(value: str) -> str:
    """Whitespace (line breaks of wrapped table cells, no-break spaces) as single spaces."""
    return " ".join(value.split())


def pdf_pages(data: bytes) -> list[str]:
    return [flat(page.extract_text()) for page in PdfReader(io.BytesIO(data)).pages]


def form(plan: P.PlanState, stage: str, pillar: str, name: str) -> dict[str, Any]:
    entry = plan.form(stage, pillar, name)
    assert entry is not None, (stage, pillar, name)
    return entry.data


def expected_texts(plan: P.PlanState, shown: Callable[[str], str] = pdf_safe) -> list[str]:
    """What the forms and events of ``plan`` say, that the masterplan must show (as
    ``shown`` renders free text: the PDF replaces what its fonts cannot show)."""
    out: list[str] = []
    for pillar in plan.pillars:
        readiness = form(plan, "bimtek_1", pillar, "readiness")
        out += [readiness[a]["findings"] for a in ("structure", "infrastructure",
                                                    "superstructure")]
        out += [shown(p) for p in readiness["problems"] + readiness["potentials"]]
        out += [i["text"] for i in form(plan, "bimtek_1", pillar, "swot")["items"]]
        programmes = form(plan, "bimtek_2", pillar, "innovation_programmes")["programmes"]
        out += [p["name"] for p in programmes] + [p["description"] for p in programmes]
        candidates = form(plan, "bimtek_2", pillar, "quick_win_candidates")["candidates"]
        out += [c["rationale"] for c in candidates]
        for prof in form(plan, "bimtek_3", pillar, "quick_win_profiles")["profiles"]:
            out += [prof["objective"], prof["beneficiaries"], rupiah(prof["budget_idr"])]
            out += [r["risk"] for r in prof["risks"]] + [r["handling"] for r in prof["risks"]]
        out += [i["target"] for i in form(plan, "bimtek_3", pillar, "roadmap")["items"]]
        for step in form(plan, "bimtek_4", pillar, "implementation_steps")["steps"]:
            out += [step["milestone"], step["owner_agency"], step["start"], step["end"],
                    rupiah(step["budget_idr"])]
    for qw in plan.quick_wins.values():
        out += [f"{qw.quick_win_id} {qw.name}", f"{qw.completion_percent}%", qw.agency]
    out += [f.text for f in plan.findings]
    return [flat(t) for t in out]


SECTIONS = ("Kesiapan daerah / Readiness", "Analisis SWOT / SWOT analysis",
            "Program inovasi per pilar / Programmes per pillar",
            "Profil quick win dan register risiko / Quick-win profiles and risk registers",
            "Peta jalan 1, 5 dan 10 tahun / 1-, 5- and 10-year roadmap",
            "Langkah implementasi / Implementation steps",
            "Formulir khusus pilar / Pillar-specific forms",
            "Catatan persetujuan / Approval record")


# ---------------------------------------------------------------------------- PDF
def test_pdf_of_the_approved_masterplan_has_every_section(cohort: Cohort) -> None:
    engine = cohort.engine
    data = masterplan_pdf(engine, PROGRAMME, APPROVED)
    assert data.startswith(b"%PDF-")
    pages = pdf_pages(data)
    text = " ".join(pages)
    plan = engine.plan(PROGRAMME, APPROVED)
    head = engine.history(PROGRAMME, APPROVED)[-1].hash
    # cover: programme, region name and code, head title, year
    cover = pages[0]
    for part in ("RENCANA INDUK (MASTERPLAN) SMART CITY", "Kabupaten Ponorogo",
                 "Region code: 35.02", "Province: Jawa Timur", "Head: Bupati",
                 f"Programme {PROGRAMME} ({PROGRAMME})", "Year 2023",
                 "approved by the regent", head):
        assert part in cover, part
    # every chapter, each starting on its own page, in order
    starts = [next(n for n, page in enumerate(pages[1:], 1) if title in page[:400])
              for title in SECTIONS]
    assert starts == sorted(starts)
    # readiness per pillar, in its three areas
    for area in ("Struktur / Structure", "Infrastruktur / Infrastructure",
                 "Suprastruktur / Superstructure"):
        assert text.count(area) == len(plan.pillars)
    # every form's content and every quick win, with its risk register
    missing = [t for t in expected_texts(plan) if t not in text]
    assert not missing
    assert "Kemungkinan / Likelihood Dampak / Impact Skor / Score" in text
    assert "RX-1 " + RISK_TEXT in text and "20 (tinggi / high)" in text
    # pillar-specific forms are rendered too (governance SPBE, society channels)
    assert "Evaluasi SPBE / SPBE (e-government) assessment" in text
    assert "SP4N-LAPOR!" in text
    # the approval record, tied to the head of the plan's stream
    approval = pages[-1]
    for part in (REGULATION, "15 Januari 2024 (2024-01-15)",
                 "Quick win masuk RPJMD / Quick wins in the RPJMD Ya / yes",
                 "Putaran reviu / Review rounds 2", head, f"Versi / Version {plan.version}"):
        assert part in approval, part
    # hostile and non-Latin-1 text is shown safely, with no DRAFT mark on an approved plan
    assert flat(HOSTILE) in text
    assert pdf_safe(NON_LATIN) == "Pelatihan ? ?? L\u00f3dz" and pdf_safe(NON_LATIN) in text
    assert "DRAFT" not in text


def test_pdf_is_reproducible_for_the_same_plan_head(cohort: Cohort) -> None:
    first = masterplan_pdf(cohort.engine, PROGRAMME, APPROVED)
    assert masterplan_pdf(cohort.engine, PROGRAMME, APPROVED) == first


# ---------------------------------------------------------------------------- HTML
def test_html_has_the_sections_and_escapes_hostile_text(cohort: Cohort) -> None:
    engine = cohort.engine
    html = masterplan_html(engine, PROGRAMME, APPROVED)
    head = engine.history(PROGRAMME, APPROVED)[-1].hash
    for anchor in ("readiness", "swot", "programmes", "quick-wins", "roadmap",
                   "implementation", "pillar-forms", "agencies", "approval"):
        assert f'<section id="{anchor}">' in html and f'href="#{anchor}"' in html
    assert "Kabupaten Ponorogo" in html and "35.02" in html and "Bupati" in html
    assert REGULATION in html and head in html
    assert f'<meta name="smartcity-head-hash" content="{head}">' in html
    # nothing a form or an event carries becomes markup
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;kutip&#34; Café" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert NON_LATIN in html  # HTML is UTF-8: nothing is replaced
    assert 'class="draft-banner"' not in html and '<body class="approved">' in html
    shown = flat(unescape(re.sub(r"<[^>]+>", " ", html)))
    missing = [t for t in expected_texts(engine.plan(PROGRAMME, APPROVED), str)
               if t not in shown]
    assert not missing


# ---------------------------------------------------------------------------- drafts
def test_a_plan_not_approved_is_refused_without_draft_and_marked_with_it(
        cohort: Cohort) -> None:
    engine = cohort.engine
    for export in (masterplan_pdf, masterplan_html):
        with pytest.raises(TransitionError, match=r"not approved by the regent.*draft=True"):
            export(engine, PROGRAMME, OPEN)
    pages = pdf_pages(masterplan_pdf(engine, PROGRAMME, OPEN, draft=True))
    assert all(DRAFT_LABEL in page for page in pages)
    assert "Kabupaten Wonosobo" in pages[0]
    assert "Belum diisi / not submitted." in " ".join(pages)  # roadmap, steps not yet in
    html = masterplan_html(engine, PROGRAMME, OPEN, draft=True)
    assert "<title>DRAFT - " in html and 'class="draft-banner"' in html
    assert DRAFT_LABEL in html
    # a draft of an approved plan says it is a working copy, not that it is unapproved
    copy_pages = pdf_pages(masterplan_pdf(engine, PROGRAMME, APPROVED, draft=True))
    assert all(DRAFT_COPY_LABEL in page for page in copy_pages)


def test_unknown_and_malformed_plans_are_clear(cohort: Cohort) -> None:
    with pytest.raises(NotFound, match=r"13\.73 is not enrolled"):
        masterplan_pdf(cohort.engine, PROGRAMME, ABSENT, draft=True)
    with pytest.raises(ValidationError, match="region_code"):
        masterplan_html(cohort.engine, PROGRAMME, "3502")


def test_formatting_helpers() -> None:
    assert flat(rupiah(1_502_000_000)) == "Rp 1.502.000.000"
    assert long_date("2024-01-15") == "15 Januari 2024 (2024-01-15)"
    assert long_date(None) == "-"
    assert pdf_safe("Café \u0141\u00f3d\u017a \u2713\tx\x00") == "Café L\u00f3dz ? x"


# ---------------------------------------------------------------------------- XLSX
def rows(sheet: openpyxl.worksheet.worksheet.Worksheet) -> list[dict[str, object]]:
    header, *body = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, r, strict=True)) for r in body]  # type: ignore[arg-type]


def test_cohort_xlsx_has_regions_quick_wins_and_a_summary(cohort: Cohort) -> None:
    engine = cohort.engine
    book = openpyxl.load_workbook(io.BytesIO(cohort_xlsx(engine, PROGRAMME)))
    assert book.sheetnames == ["Ringkasan - Summary", "Daerah - Regions", "Quick wins"]
    report = cohort_report(engine, PROGRAMME)
    pillars = engine.programme(PROGRAMME).pillar_ids

    regions = {r["Kode / Code"]: r for r in rows(book["Daerah - Regions"])}
    assert list(regions) == [APPROVED, OPEN, ABSENT]
    approved, open_, absent = regions[APPROVED], regions[OPEN], regions[ABSENT]
    assert (approved["Nama / Name"], approved["Jenis / Kind"], approved["Provinsi / Province"],
            approved["Tahap / Stage"], approved["Status"]) == (
        "Kabupaten Ponorogo", "kabupaten", "Jawa Timur", "approved", "done")
    assert (approved["Putaran reviu / Review rounds"], approved["Temuan / Findings"]) == (2, 1)
    assert (open_["Tahap / Stage"], open_["Status"], open_["Putaran reviu / Review rounds"]) \
        == ("bimtek_2", "open", 0)
    assert (absent["Nama / Name"], absent["Tahap / Stage"]) == ("Kota Sawahlunto",
                                                                "not_enrolled")
    for summary in report["regions"]:
        row = regions[summary["region_code"]]
        for pillar in pillars:
            assert row[f"{pillar} submitted"] == summary["forms"][pillar]["submitted"]
            assert row[f"{pillar} required"] == summary["forms"][pillar]["required"]
        assert row["Quick wins"] == len(summary["quick_wins"])
    assert approved["governance submitted"] == approved["governance required"] == 8
    assert open_["Formulir masuk / Forms submitted"] == open_["Formulir wajib / Forms required"]

    quick = rows(book["Quick wins"])
    plans = {code: engine.plan(PROGRAMME, code) for code in (APPROVED, OPEN)}
    assert len(quick) == sum(len(p.quick_wins) for p in plans.values())
    for row in quick:
        qw = plans[row["Kode daerah / Region code"]].quick_wins[row["ID"]]  # type: ignore[index]
        assert (row["Pilar / Pillar"], row["Nama / Name"], row["OPD / Agency"],
                row["Capaian % / Completion %"]) == (qw.pillar, qw.name, qw.agency,
                                                     qw.completion_percent)
    risky = next(r for r in quick if r["Kode daerah / Region code"] == APPROVED
                 and r["ID"] == sorted(plans[APPROVED].quick_wins)[0])
    profile_risks = next(
        len(p["risks"]) for e in plans[APPROVED].forms_of_all("bimtek_3", "quick_win_profiles")
        for p in e.data["profiles"] if p["quick_win_id"] == risky["ID"])
    assert risky["Risiko / Risks"] == profile_risks + 1  # the profile's and the recorded one
    assert all(r["Risiko / Risks"] == 0 for r in quick
               if r["Kode daerah / Region code"] == OPEN)

    summary = list(book["Ringkasan - Summary"].iter_rows(values_only=True))
    facts = {r[0]: r[1] for r in summary if r[0]}
    assert facts["Program / Programme"] == f"Programme {PROGRAMME}"
    assert facts["Belum terdaftar / Not enrolled"] == ABSENT
    stages = {r[0]: r[2] for r in summary if r[0] in P.STAGES}
    assert stages == {**{s: 0 for s in P.STAGES}, "approved": 1, "bimtek_2": 1}
    by_pillar = {r[0]: r[1] for r in summary if r[0] in pillars}
    assert by_pillar == {p: report["quick_wins_by_pillar"].get(p, {"count": 0})["count"]
                         for p in pillars}
    assert sum(by_pillar.values()) == len(quick)


# ---------------------------------------------------------------------------- CLI
def cli() -> typer.Typer:
    """`smartcity export` as engine/cli.py wires it: each command behind handle_errors."""
    sub = typer.Typer()
    for command in export_app.registered_commands:
        assert command.callback is not None
        wrapped = copy.copy(command)
        wrapped.callback = handle_errors(command.callback)
        sub.registered_commands.append(wrapped)
    app = typer.Typer()
    app.add_typer(sub, name="export")
    return app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli(), ["export", *args])
    return result.exit_code, result.output


def test_cli_exports_pdf_html_and_xlsx(cohort: Cohort, tmp_path: Path) -> None:
    head = cohort.engine.history(PROGRAMME, APPROVED)[-1].hash
    pdf, html, xlsx = tmp_path / "ponorogo.pdf", tmp_path / "ponorogo.html", tmp_path / "c.xlsx"
    code, output = invoke("masterplan", PROGRAMME, APPROVED, "--format", "pdf", "--out",
                          str(pdf), "--db", cohort.url)
    assert code == 0, output
    assert head in flat(output) and pdf.read_bytes().startswith(b"%PDF-")
    code, output = invoke("masterplan", PROGRAMME, APPROVED, "--out", str(html), "--db",
                          cohort.url)
    assert code == 0, output
    assert REGULATION in html.read_text(encoding="utf-8")
    code, output = invoke("masterplan", PROGRAMME, OPEN, "--out", str(tmp_path / "w.pdf"),
                          "--draft", "--db", cohort.url)
    assert code == 0 and "(DRAFT)" in output, output
    code, output = invoke("cohort", PROGRAMME, "--out", str(xlsx), "--db", cohort.url)
    assert code == 0, output
    assert openpyxl.load_workbook(xlsx).sheetnames[1] == "Daerah - Regions"


@pytest.mark.parametrize(("args", "says"), [
    (("masterplan", PROGRAMME, APPROVED, "--format", "docx", "--out", "x.docx"),
     "format: 'docx' is not an export format (fix: use --format pdf or --format html)"),
    (("masterplan", PROGRAMME, APPROVED, "--out", "x.txt"),
     "format: cannot tell the format from x.txt"),
    (("masterplan", PROGRAMME, APPROVED, "--format", "pdf", "--out", "x.html"),
     "out: x.html does not end in .pdf"),
    (("masterplan", PROGRAMME, APPROVED, "--out", "missing/x.pdf"),
     "out: directory missing does not exist"),
    (("masterplan", PROGRAMME, OPEN, "--out", "x.pdf"), "not approved by the regent yet"),
    (("masterplan", PROGRAMME, "99.99", "--out", "x.pdf"), "no kabupaten or kota"),
    (("masterplan", "nope", APPROVED, "--out", "x.pdf"), "not enrolled in programme 'nope'"),
    (("cohort", PROGRAMME, "--out", "c.csv"), "out: c.csv does not end in .xlsx"),
    (("cohort", "nope", "--out", "c.xlsx"), "no programme 'nope'"),
])
def test_cli_bad_input_is_one_clear_line_and_writes_nothing(
        cohort: Cohort, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        args: tuple[str, ...], says: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = invoke(*args, "--db", cohort.url)
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], output
    assert list(tmp_path.iterdir()) == []
