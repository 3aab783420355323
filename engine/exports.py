"""Exports: the masterplan a regent signs (HTML and PDF) and cohort progress (XLSX).

The masterplan is built once as a document model (``Masterplan``: a cover and numbered
sections of blocks) from a single read of the plan's stream, so the state shown and the
head hash printed belong to the same event. The HTML (Jinja2, autoescaped) and the PDF
(reportlab with its standard fonts, no system packages) render that one model, so both carry
the same content.

Standard forms (engine/forms.py) get their own layout; any other form a pillar plugin adds
(``extra_forms``) is rendered generically from its data. A plan that the regent has not
approved is refused unless ``draft=True``, and a draft is labelled DRAFT on every page.
"""

from __future__ import annotations

import io
import unicodedata
from contextlib import suppress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, get_args
from xml.sax.saxutils import escape as xml_escape

from pydantic import BaseModel

from engine.application import Engine
from engine.audit import replay
from engine.domain.plan import HIGH_RISK, STAGE_LABELS, STAGES, PlanState, QuickWin
from engine.errors import NotFound, TransitionError
from engine.forms import agencies
from engine.pillars import PillarRegistry
from engine.records import StoredEvent
from engine.regions import all_regions, get_region

__all__ = ["Masterplan", "build_masterplan", "cohort_xlsx", "masterplan_html", "masterplan_pdf"]

STANDARD_FORMS = ("readiness", "swot", "innovation_programmes", "quick_win_candidates",
                  "quick_win_profiles", "roadmap", "implementation_steps")
AREAS = (("structure", "Struktur / Structure"),
         ("infrastructure", "Infrastruktur / Infrastructure"),
         ("superstructure", "Suprastruktur / Superstructure"))
LEVELS = {1: "ad hoc", 2: "initial", 3: "scattered", 4: "integrated", 5: "smart"}
SWOT_KINDS = {"strength": "Kekuatan / Strength", "weakness": "Kelemahan / Weakness",
              "opportunity": "Peluang / Opportunity", "threat": "Ancaman / Threat"}
HORIZONS = {"short": "pendek / short", "medium": "menengah / medium", "long": "panjang / long"}
ROADMAP_HORIZONS = ((1, "Jangka pendek (1 tahun) / Short term (1 year)"),
                    (5, "Jangka menengah (5 tahun) / Medium term (5 years)"),
                    (10, "Jangka panjang (10 tahun) / Long term (10 years)"))
MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember")
NOT_SUBMITTED = "Belum diisi / not submitted."
DRAFT_LABEL = "DRAFT - belum disetujui kepala daerah / not approved by the regent"
DRAFT_COPY_LABEL = "DRAFT - salinan kerja, bukan dokumen yang ditetapkan / working copy"


# ---------------------------------------------------------------------------- document model
@dataclass(frozen=True)
class Heading:
    """A heading inside a section: level 2 (a pillar) or 3 (an item of a pillar)."""

    kind: ClassVar[str] = "heading"
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    """A paragraph; ``note`` ones are set smaller (explanations, empty forms), ``mono`` ones
    in a fixed-width font (the head hash)."""

    kind: ClassVar[str] = "para"
    text: str
    note: bool = False
    mono: bool = False


@dataclass(frozen=True)
class Facts:
    """Label / value pairs, shown as a two-column table."""

    kind: ClassVar[str] = "facts"
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table with a header row; ``numeric`` names the right-aligned columns."""

    kind: ClassVar[str] = "table"
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Bullets:
    """A bulleted list, with an optional caption."""

    kind: ClassVar[str] = "bullets"
    items: tuple[str, ...]
    caption: str = ""


Block = Heading | Para | Facts | Table | Bullets


@dataclass(frozen=True)
class Section:
    """A numbered chapter of the masterplan."""

    anchor: str
    number: int
    title_id: str
    title_en: str
    blocks: tuple[Block, ...]

    @property
    def title(self) -> str:
        return f"{self.number}. {self.title_id} / {self.title_en}"


@dataclass(frozen=True)
class Cover:
    """What the cover page names: programme, region, its head's title, year."""

    programme_id: str
    programme_name: str
    year: int
    region_code: str
    region_name: str
    region_kind: str
    province: str
    head_title: str


@dataclass(frozen=True)
class Masterplan:
    """The whole document, ready for a renderer."""

    cover: Cover
    sections: tuple[Section, ...]
    draft: bool
    approved: bool
    stage: str
    stage_label: str
    version: int
    stream_id: str
    head_hash: str

    @property
    def title(self) -> str:
        return f"Masterplan Smart City {self.cover.region_name}"

    @property
    def draft_label(self) -> str:
        """What a draft says on every page: not approved yet, or a working copy."""
        return DRAFT_COPY_LABEL if self.approved else DRAFT_LABEL


# ---------------------------------------------------------------------------- formatting
def rupiah(amount: Any) -> str:
    """``1250000`` -> ``Rp 1.250.000`` (Indonesian thousands separator, no-break space)."""
    try:
        value = int(amount)
    except (TypeError, ValueError):
        return text(amount)
    return "Rp\u00a0" + f"{value:,}".replace(",", ".")  # no break inside an amount


def long_date(value: Any) -> str:
    """``2024-01-15`` -> ``15 Januari 2024 (2024-01-15)``; anything else as text."""
    if value in (None, ""):
        return "-"
    try:
        d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return text(value)
    return f"{d.day} {MONTHS_ID[d.month - 1]} {d.year} ({d.isoformat()})"


def yes_no(value: Any) -> str:
    return "Ya / yes" if value else "Tidak / no"


def text(value: Any) -> str:
    """Any form value as one line of text (lists joined, nested objects spelled out)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, dict):
        return "; ".join(f"{humanise(k)}: {text(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "-"
    return str(value)


def humanise(key: Any) -> str:
    """``budget_idr`` -> ``Budget idr``: a field name as a label."""
    words = str(key).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def percent(value: Any) -> str:
    return f"{value}%"


def risk_score(likelihood: int, impact: int) -> str:
    score = likelihood * impact
    return f"{score} (tinggi / high)" if score >= HIGH_RISK else str(score)


# ---------------------------------------------------------------------------- building
@dataclass(frozen=True)
class RiskLine:
    """One line of a quick win's risk register, from its profile form or a recorded risk."""

    risk_id: str
    description: str
    likelihood: int
    impact: int
    handling: str
    mitigation: str
    source: str

    @property
    def score(self) -> int:
        return self.likelihood * self.impact


def risk_register(plan: PlanState, quick_win_id: str) -> list[RiskLine]:
    """A quick win's risks: those of its bimtek III profile, then those recorded as events."""
    out: list[RiskLine] = []
    qw = plan.quick_wins.get(quick_win_id)
    profile = _profile(plan, qw.pillar if qw else None, quick_win_id)
    for n, r in enumerate(profile.get("risks", []) if profile else [], start=1):
        try:
            out.append(RiskLine(f"R{n}", text(r.get("risk")), int(r["likelihood"]),
                                int(r["impact"]), text(r.get("handling")),
                                str(r.get("mitigation") or ""), "profil / profile"))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a plugin's own profile shape: shown in full in its form section
    for r in qw.risks if qw else ():
        out.append(RiskLine(r.risk_id, r.description, r.likelihood, r.impact, r.handling,
                            r.mitigation, "register"))
    return out


def _profile(plan: PlanState, pillar: str | None, quick_win_id: str) -> dict[str, Any] | None:
    entries = ([plan.form("bimtek_3", pillar, "quick_win_profiles")] if pillar else
               plan.forms_of_all("bimtek_3", "quick_win_profiles"))
    for entry in entries:
        if entry is None or not isinstance(entry.data, dict):
            continue
        for prof in entry.data.get("profiles", []):
            if isinstance(prof, dict) and prof.get("quick_win_id") == quick_win_id:
                return prof
    return None


class _Builder:
    """Turns one plan's state into the masterplan's sections."""

    def __init__(self, plan: PlanState, registry: PillarRegistry):
        self.plan = plan
        self.registry = registry
        self.agencies_used: set[str] = set()

    # ------------------------------------------------------------ lookups
    def pillar_name(self, pillar: str | None) -> str:
        if pillar is None:
            return "-"
        spec = self.registry.pillars.get(pillar)
        return f"{spec.name_id} / {spec.name_en}" if spec else pillar

    def element(self, pillar: str, element: Any) -> str:
        spec = self.registry.pillars.get(pillar)
        for e in spec.elements if spec else ():
            if e.id == element:
                return e.name_id
        return text(element)

    def agency(self, code: Any) -> str:
        code = text(code)
        if code in agencies():
            self.agencies_used.add(code)
        return code

    def data(self, stage: str, pillar: str, form: str) -> dict[str, Any] | None:
        entry = self.plan.form(stage, pillar, form)
        return entry.data if entry is not None and isinstance(entry.data, dict) else None

    def ref_name(self, pillar: str, ref: Any) -> str:
        """An innovation programme or quick-win id with its name."""
        programmes = self.data("bimtek_2", pillar, "innovation_programmes") or {}
        for p in programmes.get("programmes", []):
            if isinstance(p, dict) and p.get("id") == ref:
                return f"{ref} {p.get('name', '')}".strip()
        qw = self.plan.quick_wins.get(str(ref))
        return f"{ref} {qw.name}" if qw else text(ref)

    def form_model(self, pillar: str, stage: str, form: str) -> type[BaseModel] | None:
        spec = self.registry.forms.get((pillar, stage, form))
        return spec.model if spec else None

    def form_title(self, pillar: str, stage: str, form: str) -> str:
        spec = self.registry.forms.get((pillar, stage, form))
        return f"{spec.title_id} / {spec.title_en}" if spec else humanise(form)

    def standard(self, stage: str, pillar: str, form: str,
                 render: Callable[[str, dict[str, Any]], list[Block]]) -> list[Block]:
        """A standard form's own layout; the generic one if a plugin changed its shape."""
        data = self.data(stage, pillar, form)
        if data is None:
            return [Para(NOT_SUBMITTED, note=True)]
        try:
            return render(pillar, data)
        except (KeyError, TypeError, ValueError, AttributeError):
            return generic_blocks(data, self.form_model(pillar, stage, form))

    # ------------------------------------------------------------ sections
    def sections(self, approval: Sequence[Block]) -> tuple[Section, ...]:
        parts: list[tuple[str, str, str, list[Block]]] = [
            ("readiness", "Kesiapan daerah", "Readiness", self.readiness()),
            ("swot", "Analisis SWOT", "SWOT analysis", self.swot()),
            ("programmes", "Program inovasi per pilar", "Programmes per pillar",
             self.programmes()),
            ("quick-wins", "Profil quick win dan register risiko",
             "Quick-win profiles and risk registers", self.quick_wins()),
            ("roadmap", "Peta jalan 1, 5 dan 10 tahun", "1-, 5- and 10-year roadmap",
             self.roadmap()),
            ("implementation", "Langkah implementasi", "Implementation steps",
             self.implementation()),
        ]
        extra = self.extra_forms()
        if extra:
            parts.append(("pillar-forms", "Formulir khusus pilar", "Pillar-specific forms",
                          extra))
        parts.append(("agencies", "Perangkat daerah dan mitra", "Agencies and partners",
                      self.agency_list()))
        parts.append(("approval", "Catatan persetujuan", "Approval record", list(approval)))
        return tuple(Section(anchor, n, t_id, t_en, tuple(blocks))
                     for n, (anchor, t_id, t_en, blocks) in enumerate(parts, start=1))

    def readiness(self) -> list[Block]:
        out: list[Block] = [Para("Kesiapan daerah (Bimtek I) per pilar dalam tiga area: "
                                 "struktur, infrastruktur dan suprastruktur. Tingkat 1-5: "
                                 + ", ".join(f"{k} {v}" for k, v in LEVELS.items()) + ".",
                                 note=True)]
        overview: list[tuple[str, ...]] = []
        for pillar in self.plan.pillars:
            data = self.data("bimtek_1", pillar, "readiness") or {}
            try:
                levels = tuple(text(data[a]["level"]) for a, _ in AREAS)
            except (KeyError, TypeError):
                levels = ("-", "-", "-")
            overview.append((self.pillar_name(pillar), *levels))
        out.append(Table(("Pilar / Pillar", "Struktur", "Infrastruktur", "Suprastruktur"),
                         tuple(overview), numeric=frozenset({1, 2, 3})))
        for pillar in self.plan.pillars:
            out.append(Heading(self.pillar_name(pillar)))
            out += self.standard("bimtek_1", pillar, "readiness", self._readiness)
        return out

    def _readiness(self, pillar: str, data: dict[str, Any]) -> list[Block]:
        rows = []
        for area, label in AREAS:
            a = data[area]
            level = int(a["level"])
            rows.append((label, f"{level} ({LEVELS.get(level, '')})", text(a["findings"]),
                         text(a.get("evidence") or "-")))
        return [Table(("Area", "Tingkat / Level", "Temuan / Findings", "Bukti / Evidence"),
                      tuple(rows)),
                Bullets(tuple(text(p) for p in data["problems"]),
                        caption="Permasalahan / Problems"),
                Bullets(tuple(text(p) for p in data["potentials"]),
                        caption="Potensi / Potentials")]

    def swot(self) -> list[Block]:
        out: list[Block] = [Para("Kekuatan, kelemahan, peluang dan ancaman yang dipetakan "
                                 "tiap perangkat daerah (Bimtek I).", note=True)]
        for pillar in self.plan.pillars:
            out.append(Heading(self.pillar_name(pillar)))
            out += self.standard("bimtek_1", pillar, "swot", self._swot)
        return out

    def _swot(self, pillar: str, data: dict[str, Any]) -> list[Block]:
        order = list(SWOT_KINDS)
        items = sorted(data["items"], key=lambda i: (order.index(i["kind"])
                                                    if i["kind"] in order else 9, i["id"]))
        rows = tuple((text(i["id"]), SWOT_KINDS.get(i["kind"], text(i["kind"])),
                      self.element(pillar, i["element"]), self.agency(i["agency"]),
                      text(i["text"])) for i in items)
        return [Table(("ID", "Jenis / Kind", "Elemen / Element", "OPD", "Uraian / Text"), rows)]

    def programmes(self) -> list[Block]:
        out: list[Block] = [Para("Program inovasi dan kandidat quick win (program unggulan) "
                                 "per pilar (Bimtek II).", note=True)]
        for pillar in self.plan.pillars:
            out.append(Heading(self.pillar_name(pillar)))
            out += self.standard("bimtek_2", pillar, "innovation_programmes", self._programmes)
            out.append(Heading("Kandidat quick win / Quick-win candidates", level=3))
            out += self.standard("bimtek_2", pillar, "quick_win_candidates", self._candidates)
        return out

    def _programmes(self, pillar: str, data: dict[str, Any]) -> list[Block]:
        rows = tuple((text(p["id"]), text(p["name"]), self.element(pillar, p["element"]),
                      self.agency(p["agency"]), text(p["description"]),
                      text(p.get("swot_refs", [])), HORIZONS.get(p["horizon"], text(p["horizon"])))
                     for p in data["programmes"])
        return [Table(("ID", "Program", "Elemen / Element", "OPD", "Uraian / Description",
                       "SWOT", "Horizon"), rows)]

    def _candidates(self, pillar: str, data: dict[str, Any]) -> list[Block]:
        rows = tuple((text(c["quick_win_id"]), text(c["name"]), self.agency(c["agency"]),
                      self.element(pillar, c["element"]),
                      self.ref_name(pillar, c["programme_ref"]),
                      yes_no(c["doable_within_12_months"]), text(c["rationale"]))
                     for c in data["candidates"])
        return [Table(("ID", "Quick win", "OPD", "Elemen / Element", "Program",
                       "<= 12 bulan / months", "Alasan / Rationale"), rows)]

    def quick_wins(self) -> list[Block]:
        qws = sorted(self.plan.quick_wins.values(),
                     key=lambda q: (self._pillar_index(q.pillar), q.quick_win_id))
        out: list[Block] = [Para(
            f"{len(qws)} quick win. Tiap quick win memiliki profil dan register risiko: "
            f"identifikasi, analisis (kemungkinan x dampak, masing-masing 1-5), penanganan dan "
            f"mitigasi; skor {HIGH_RISK} ke atas berisiko tinggi dan wajib dimitigasi.",
            note=True)]
        if not qws:
            out.append(Para("Belum ada quick win / no quick wins proposed.", note=True))
        pillar: str | None = None
        for qw in qws:
            if qw.pillar != pillar:
                pillar = qw.pillar
                out.append(Heading(self.pillar_name(pillar)))
            out += self._quick_win(qw)
        return out

    def _pillar_index(self, pillar: str) -> int:
        return self.plan.pillars.index(pillar) if pillar in self.plan.pillars else 99

    def _quick_win(self, qw: QuickWin) -> list[Block]:
        out: list[Block] = [Heading(f"{qw.quick_win_id} {qw.name}", level=3)]
        facts = [("ID", qw.quick_win_id), ("Nama / Name", qw.name),
                 ("Pilar / Pillar", self.pillar_name(qw.pillar)),
                 ("OPD pelaksana / Agency", self.agency(qw.agency)),
                 ("Capaian / Completion", percent(qw.completion_percent))]
        if qw.description:
            facts.append(("Uraian / Description", qw.description))
        profile = _profile(self.plan, qw.pillar, qw.quick_win_id)
        if profile:
            facts += [("Tujuan / Objective", text(profile.get("objective"))),
                      ("Penerima manfaat / Beneficiaries", text(profile.get("beneficiaries"))),
                      ("Anggaran / Budget", rupiah(profile.get("budget_idr"))),
                      ("Indikator keluaran / Output indicator",
                       text(profile.get("output_indicator")))]
        else:
            facts.append(("Profil / Profile", NOT_SUBMITTED))
        out.append(Facts(tuple(facts)))
        risks = risk_register(self.plan, qw.quick_win_id)
        if risks:
            out.append(Table(
                ("No", "Risiko / Risk", "Kemungkinan / Likelihood", "Dampak / Impact",
                 "Skor / Score", "Penanganan / Handling", "Mitigasi / Mitigation"),
                tuple((r.risk_id, r.description, str(r.likelihood), str(r.impact),
                       risk_score(r.likelihood, r.impact), r.handling, r.mitigation or "-")
                      for r in risks),
                numeric=frozenset({2, 3, 4})))
        else:
            out.append(Para("Register risiko belum diisi / no risk register.", note=True))
        if qw.advice:
            out.append(Bullets(tuple(f"{a.advised_on} {a.advisor}: {a.text}"
                                     for a in qw.advice),
                               caption="Saran tenaga ahli / Expert advice"))
        return out

    def roadmap(self) -> list[Block]:
        items: list[tuple[int, int, int, tuple[str, ...]]] = []
        odd: list[Block] = []
        for pillar in self.plan.pillars:
            data = self.data("bimtek_3", pillar, "roadmap")
            if data is None:
                continue
            try:
                for i in data["items"]:
                    items.append((int(i["horizon"]), int(i["year"]), self._pillar_index(pillar),
                                  (text(i["year"]), self.pillar_name(pillar),
                                   self.element(pillar, i["element"]),
                                   self.ref_name(pillar, i["programme_ref"]),
                                   text(i["target"]))))
            except (KeyError, TypeError, ValueError):
                odd += [Heading(self.pillar_name(pillar)),
                        *generic_blocks(data, self.form_model(pillar, "bimtek_3", "roadmap"))]
        out: list[Block] = [Para(f"Peta jalan rencana induk tahun {self.plan.programme_year}: "
                                 "jangka pendek (1 tahun), menengah (5 tahun) dan panjang "
                                 "(10 tahun), per pilar (Bimtek III).", note=True)]
        for horizon, label in ROADMAP_HORIZONS:
            rows = tuple(r for h, _, _, r in sorted(items, key=lambda x: x[:3]) if h == horizon)
            out.append(Heading(label))
            out.append(Table(("Tahun / Year", "Pilar / Pillar", "Elemen / Element",
                              "Program", "Target"), rows) if rows
                       else Para(NOT_SUBMITTED, note=True))
        missing = [self.pillar_name(p) for p in self.plan.pillars
                   if self.data("bimtek_3", p, "roadmap") is None]
        if missing:
            out.append(Para("Tanpa peta jalan / no roadmap: " + ", ".join(missing), note=True))
        return out + odd

    def implementation(self) -> list[Block]:
        out: list[Block] = [Para("Langkah implementasi inovasi terpilih (Bimtek IV): "
                                 "OPD pemilik, jadwal, anggaran dan tonggak capaian.",
                                 note=True)]
        total = 0
        for pillar in self.plan.pillars:
            out.append(Heading(self.pillar_name(pillar)))
            out += self.standard("bimtek_4", pillar, "implementation_steps", self._steps)
            data = self.data("bimtek_4", pillar, "implementation_steps") or {}
            with suppress(KeyError, TypeError, ValueError):  # a plugin's own shape
                total += sum(int(s["budget_idr"]) for s in data.get("steps", []))
        out.append(Facts((("Total anggaran langkah implementasi / Total implementation "
                           "budget", rupiah(total)),)))
        return out

    def _steps(self, pillar: str, data: dict[str, Any]) -> list[Block]:
        steps = sorted(data["steps"], key=lambda s: (s["start"], s["step_id"]))
        rows = tuple((text(s["step_id"]), self.ref_name(pillar, s["ref"]),
                      self.agency(s["owner_agency"]), text(s["start"]), text(s["end"]),
                      rupiah(s["budget_idr"]), text(s["milestone"])) for s in steps)
        subtotal = sum(int(s["budget_idr"]) for s in steps)
        return [Table(("Langkah / Step", "Untuk / For", "OPD pemilik / Owner agency",
                       "Mulai / Start", "Selesai / End", "Anggaran / Budget",
                       "Tonggak / Milestone"), rows, numeric=frozenset({5})),
                Para(f"Subtotal: {rupiah(subtotal)}", note=True)]

    def extra_forms(self) -> list[Block]:
        out: list[Block] = []
        for pillar in self.plan.pillars:
            entries = sorted((f for f in self.plan.forms_of(pillar)
                              if f.form not in STANDARD_FORMS),
                             key=lambda f: (STAGES.index(f.stage) if f.stage in STAGES else 99,
                                            f.form))
            if not entries:
                continue
            out.append(Heading(self.pillar_name(pillar)))
            for f in entries:
                stage = STAGE_LABELS.get(f.stage, f.stage).split(" - ")[0]
                out.append(Heading(f"{self.form_title(pillar, f.stage, f.form)} ({stage})",
                                   level=3))
                out += generic_blocks(f.data, self.form_model(pillar, f.stage, f.form))
        return out

    def agency_list(self) -> list[Block]:
        names = agencies()
        rows = tuple((code, names[code]) for code in sorted(self.agencies_used))
        if not rows:
            return [Para("Tidak ada / none.", note=True)]
        return [Para("Kode OPD dan mitra yang disebut dalam dokumen ini.", note=True),
                Table(("Kode / Code", "Nama / Name"), rows)]


def generic_blocks(data: Any, model: type[BaseModel] | None = None,
                   depth: int = 0) -> list[Block]:
    """Any form's data as blocks: scalar fields as facts, lists of objects as tables,
    lists of values as bullets, nested objects recursively (flattened past two levels).

    With the form's ``model``, fields come in the model's order, not the stored one."""
    if not isinstance(data, dict):
        return [Para(text(data))]
    out: list[Block] = []
    facts: list[tuple[str, str]] = []
    for key in _ordered(data, model):
        value = data[key]
        sub = _sub_model(model, key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = [c for c in (list(sub.model_fields) if sub else []) if
                       any(c in v for v in value)]
            for v in value:
                columns += [k for k in v if k not in columns]
            out.append(Para(humanise(key), note=True))
            out.append(Table(tuple(humanise(c) for c in columns),
                             tuple(tuple(text(v.get(c)) for c in columns) for v in value)))
        elif isinstance(value, list) and value:
            out.append(Bullets(tuple(text(v) for v in value), caption=humanise(key)))
        elif isinstance(value, dict) and value and depth < 2:
            out.append(Para(humanise(key), note=True))
            out += generic_blocks(value, sub, depth + 1)
        else:
            facts.append((humanise(key), text(value)))
    return ([Facts(tuple(facts))] if facts else []) + out


def _ordered(data: dict[str, Any], model: type[BaseModel] | None) -> list[str]:
    known = [k for k in (model.model_fields if model else ()) if k in data]
    return known + [k for k in data if k not in known]


def _sub_model(model: type[BaseModel] | None, key: str) -> type[BaseModel] | None:
    """The model of a nested object or list item field, if the form declares one."""
    info = model.model_fields.get(key) if model else None
    todo: list[Any] = [info.annotation] if info else []
    while todo:
        ann = todo.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return ann
        todo += list(get_args(ann))
    return None


# ---------------------------------------------------------------------------- the masterplan
def build_masterplan(engine: Engine, programme_id: str, region_code: str, *,
                     draft: bool = False) -> Masterplan:
    """The masterplan's document model, from one read of the plan's stream.

    Raises ValidationError for a malformed region code, NotFound for an unknown region or
    plan, and TransitionError when the regent has not approved the plan and ``draft`` is
    false.
    """
    region = get_region(region_code)  # a malformed or unknown code is refused clearly
    stored = engine.history(programme_id, region_code)
    plan = replay(stored)
    if plan is None:  # pragma: no cover - history() refuses an empty stream
        raise NotFound(f"region {region_code} is not enrolled in programme {programme_id!r}")
    approved = plan.stage == "approved" and plan.approval is not None
    if not approved and not draft:
        raise TransitionError(
            f"the masterplan of {plan.region_name} ({plan.region_code}) is not approved by the "
            f"regent yet (stage {plan.stage}, {plan.status}): export it with draft=True "
            "(`--draft`) for a copy marked DRAFT, or approve the plan first")
    try:
        programme = engine.programme(programme_id)
        programme_name, year = programme.name, programme.year
    except NotFound:  # pragma: no cover - a plan always belongs to a programme
        programme_name, year = programme_id, plan.programme_year
    cover = Cover(programme_id=programme_id, programme_name=programme_name, year=year,
                  region_code=plan.region_code, region_name=plan.region_name,
                  region_kind=plan.region_kind, province=region.province,
                  head_title=plan.head_title)
    head = stored[-1]
    builder = _Builder(plan, engine.registry)
    sections = builder.sections(_approval_blocks(plan, stored, head))
    return Masterplan(cover=cover, sections=sections, draft=draft or not approved,
                      approved=approved, stage=plan.stage,
                      stage_label=STAGE_LABELS.get(plan.stage, plan.stage),
                      version=head.version, stream_id=head.stream_id, head_hash=head.hash)


def _approval_blocks(plan: PlanState, stored: Sequence[StoredEvent],
                     head: StoredEvent) -> list[Block]:
    out: list[Block] = []
    a = plan.approval
    if a is not None and plan.stage == "approved":
        approved_at = next((e.occurred_at for e in reversed(stored)
                            if e.event_type == "ApprovedByRegent"), "")
        out.append(Facts((
            ("Disetujui oleh / Approved by", f"{a.head_title} {plan.region_name} ({a.regent})"),
            ("Jabatan / Head title", a.head_title),
            ("Nomor peraturan / Regulation number", a.regulation_number or "-"),
            ("Tanggal peraturan / Regulation date", long_date(a.regulation_date)),
            ("Quick win masuk RPJMD / Quick wins in the RPJMD", yes_no(a.quick_wins_in_rpjmd)),
            ("Dicatat pada / Recorded at", approved_at),
        )))
    else:
        out.append(Para(f"{DRAFT_LABEL}. Tahap / stage: "
                        f"{STAGE_LABELS.get(plan.stage, plan.stage)} ({plan.status})."))
    if plan.refusals:
        out.append(Bullets(tuple(plan.refusals), caption="Penolakan sebelumnya / Earlier "
                                                         "refusals"))
    out.append(Facts((("Putaran reviu / Review rounds", str(plan.review_round)),
                      ("Temuan / Findings", str(len(plan.findings))))))
    if plan.findings:
        out.append(Table(("ID", "Putaran / Round", "Pilar / Pillar", "Bobot / Severity",
                          "Temuan / Finding", "Reviewer"),
                         tuple((f.finding_id, str(f.round), f.pillar or "-", f.severity, f.text,
                                f.reviewer) for f in plan.findings),
                         numeric=frozenset({1})))
    out.append(Facts((("Rencana / Plan", head.stream_id),
                      ("Versi / Version", str(head.version)),
                      ("Peristiwa terakhir / Last event", f"{head.event_type} "
                                                          f"({head.occurred_at})"))))
    out.append(Para("Hash kepala / Head hash (SHA-256 of the plan's last event):", note=True))
    out.append(Para(head.hash, mono=True))
    out.append(Para("Hash ini mengikat dokumen pada riwayat rencana; periksa dengan "
                    f"`smartcity audit verify --plan {plan.programme_id}:{plan.region_code}`. "
                    "This hash ties the document to the plan's history.", note=True))
    out.append(Facts((("Ditetapkan di / Signed at", "........................"),
                      ("Tanggal / Date", "........................"),
                      (f"{plan.head_title} {plan.region_name}", "\n\n........................"))))
    return out


def _template_env() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("engine", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(doc: Masterplan) -> str:
    """The masterplan as one self-contained HTML page (autoescaped)."""
    return str(_template_env().get_template("masterplan.html").render(doc=doc))


def masterplan_html(engine: Engine, programme_id: str, region_code: str, *,
                    draft: bool = False) -> str:
    """The approved masterplan as HTML; ``draft=True`` exports any plan, marked DRAFT."""
    return render_html(build_masterplan(engine, programme_id, region_code, draft=draft))


def masterplan_pdf(engine: Engine, programme_id: str, region_code: str, *,
                   draft: bool = False) -> bytes:
    """The approved masterplan as PDF; ``draft=True`` exports any plan, marked DRAFT."""
    return render_pdf(build_masterplan(engine, programme_id, region_code, draft=draft))


# ---------------------------------------------------------------------------- PDF
# Letters without a Unicode decomposition that still have an obvious Latin-1 stand-in.
_STAND_INS = str.maketrans({"\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d",
                            "\u0131": "i", "\u0126": "H", "\u0127": "h", "\u2010": "-",
                            "\u2011": "-", "\u2212": "-", "\u2002": " ", "\u2003": " ",
                            "\u2009": " ", "\u202f": " "})


def pdf_safe(value: str) -> str:
    """Text the PDF's standard fonts can show (Windows-1252, which holds all of Latin-1):
    other characters lose their accents where they have one, else become ``?``."""
    out = []
    for ch in unicodedata.normalize("NFC", value).translate(_STAND_INS):
        if ch in "\r\n\t":
            out.append(" ")
            continue
        if unicodedata.category(ch) == "Cc":
            continue
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                           if not unicodedata.combining(c))
            try:
                base.encode("cp1252")
                out.append(base or "?")
            except UnicodeEncodeError:
                out.append("?")
    return "".join(out)


def _markup(value: str) -> str:
    """Plain text as reportlab paragraph markup: safe characters, escaped, breaks kept."""
    return "<br/>".join(xml_escape(pdf_safe(line)) for line in value.split("\n"))


def render_pdf(doc: Masterplan) -> bytes:
    """The masterplan as A4 PDF with reportlab's standard fonts; reproducible bytes."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer
    from reportlab.platypus import Table as PdfTable
    from reportlab.platypus import TableStyle
    from reportlab.platypus.flowables import Flowable

    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName="Helvetica", fontSize=9.5,
                          leading=12.5)
    note = ParagraphStyle("note", parent=body, fontSize=8.5, leading=11,
                          textColor=colors.HexColor("#444444"), spaceAfter=4)
    caption = ParagraphStyle("caption", parent=body, fontName="Helvetica-Bold", fontSize=8.5,
                             leading=11, spaceBefore=5, spaceAfter=1, keepWithNext=1)
    cell = ParagraphStyle("cell", parent=body, fontSize=7.8, leading=9.6, spaceBefore=0,
                          spaceAfter=0)
    cell_r = ParagraphStyle("cell_r", parent=cell, alignment=TA_RIGHT)
    head_cell = ParagraphStyle("head_cell", parent=cell, fontName="Helvetica-Bold")
    h1 = ParagraphStyle("h1", parent=base["Heading1"], fontName="Helvetica-Bold", fontSize=15,
                        leading=19, spaceAfter=8, textColor=colors.HexColor("#0b3d6b"))
    h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=12,
                        leading=15, spaceBefore=10, spaceAfter=4, keepWithNext=1)
    h3 = ParagraphStyle("h3", parent=base["Heading3"], fontName="Helvetica-Bold",
                        fontSize=10.5, leading=13, spaceBefore=6, spaceAfter=3,
                        keepWithNext=1)
    mono = ParagraphStyle("mono", parent=body, fontName="Courier", fontSize=8.5, leading=11)
    cover_title = ParagraphStyle("cover_title", parent=h1, fontSize=24, leading=30,
                                 alignment=TA_CENTER, spaceAfter=14)
    cover_sub = ParagraphStyle("cover_sub", parent=body, fontSize=13, leading=18,
                               alignment=TA_CENTER)
    draft_style = ParagraphStyle("draft", parent=cover_sub, textColor=colors.HexColor("#b00020"),
                                 fontName="Helvetica-Bold")

    page_w, page_h = A4
    margin = 1.8 * cm
    width = page_w - 2 * margin
    grid = colors.HexColor("#9aa5b1")
    shade = colors.HexColor("#e8eef5")

    def para(value: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(_markup(value), style)

    def col_widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[float]:
        """Every column at least as wide as its longest word (codes are not split), the
        rest of the width shared by how much more each column's text would need."""
        pad = 7.0
        least: list[float] = []
        wanted: list[float] = []
        for i, h in enumerate(header):
            texts = [(pdf_safe(h), "Helvetica-Bold")] + [
                (pdf_safe(r[i]), "Helvetica") for r in rows if i < len(r)]
            least.append(pad + max(stringWidth(w, font, cell.fontSize)
                                   for t, font in texts for w in t.split(" ")))
            wanted.append(max(least[-1], pad + max(
                (stringWidth(t, font, cell.fontSize) for t, font in texts[1:]), default=0)))
        if sum(least) >= width:
            return [width * w / sum(least) for w in least]
        if sum(wanted) <= width:
            return [w + (width - sum(wanted)) * w / sum(wanted) for w in wanted]
        extra = [w - m for w, m in zip(wanted, least, strict=True)]
        slack = width - sum(least)
        return [m + slack * e / sum(extra) for m, e in zip(least, extra, strict=True)]

    def table(block: Table) -> Flowable:
        header = [para(h, head_cell) for h in block.header]
        rows = [[para(v, cell_r if i in block.numeric else cell) for i, v in enumerate(r)]
                for r in block.rows]
        t = PdfTable([header, *rows], colWidths=col_widths(block.header, block.rows),
                     repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, grid),
                               ("BACKGROUND", (0, 0), (-1, 0), shade),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 3),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                               ("TOPPADDING", (0, 0), (-1, -1), 2),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]))
        return t

    def facts(block: Facts) -> Flowable:
        rows = [[para(k, head_cell), para(v, cell)] for k, v in block.rows]
        t = PdfTable(rows, colWidths=[width * 0.34, width * 0.66], hAlign="LEFT")
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, grid),
                               ("BACKGROUND", (0, 0), (0, -1), shade),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return t

    def flowables(block: Block) -> list[Flowable]:
        if isinstance(block, Heading):
            return [para(block.text, h2 if block.level <= 2 else h3)]
        if isinstance(block, Para):
            style = mono if block.mono else note if block.note else body
            return [para(block.text, style)]
        if isinstance(block, Facts):
            return [facts(block), Spacer(1, 4)]
        if isinstance(block, Table):
            return [table(block), Spacer(1, 4)]
        items = [Paragraph(_markup(i), body, bulletText="\u2022") for i in block.items]
        return ([para(block.caption, caption)] if block.caption else []) + items

    class Doc(SimpleDocTemplate):
        def afterFlowable(self, flowable: Flowable) -> None:
            outline = getattr(flowable, "_outline", None)
            if outline:
                key, title = outline
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(pdf_safe(title), key, level=0)

    def decorate(canvas: Canvas, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        left = pdf_safe(f"{doc.title} ({doc.cover.region_code}) - {doc.cover.programme_name}")
        canvas.drawString(margin, 1.1 * cm, left[:110])
        canvas.drawRightString(page_w - margin, 1.1 * cm,
                               f"hal. / page {canvas.getPageNumber()}  -  head "
                               f"{doc.head_hash[:12]}")
        if doc.draft:
            canvas.setFont("Helvetica-Bold", 9)
            canvas.setFillColor(colors.HexColor("#b00020"))
            canvas.drawCentredString(page_w / 2, page_h - 1.1 * cm, doc.draft_label)
            canvas.setFillColor(colors.Color(0.85, 0.1, 0.1, alpha=0.12))
            canvas.setFont("Helvetica-Bold", 110)
            canvas.translate(page_w / 2, page_h / 2)
            canvas.rotate(45)
            canvas.drawCentredString(0, -40, "DRAFT")
        canvas.restoreState()

    c = doc.cover
    story: list[Flowable] = [Spacer(1, 3 * cm),
                             para("RENCANA INDUK (MASTERPLAN) SMART CITY", cover_title),
                             para(c.region_name, cover_title),
                             para(f"Kode wilayah / Region code: {c.region_code}", cover_sub),
                             para(f"Provinsi / Province: {c.province or '-'}", cover_sub),
                             para(f"Kepala daerah / Head: {c.head_title}", cover_sub),
                             Spacer(1, 0.8 * cm),
                             para(f"{c.programme_name} ({c.programme_id})", cover_sub),
                             para(f"Tahun / Year {c.year}", cover_sub),
                             Spacer(1, 0.8 * cm)]
    if doc.draft:
        story.append(para(doc.draft_label, draft_style))
    else:
        story.append(para("Disetujui kepala daerah / approved by the regent", cover_sub))
    story += [Spacer(1, 1.2 * cm), para("Daftar isi / Contents", h2)]
    story += [para(s.title, body) for s in doc.sections]
    story += [Spacer(1, 0.6 * cm),
              para(f"Versi rencana / plan version {doc.version}; hash kepala / head hash:", note),
              para(doc.head_hash, mono)]
    for section in doc.sections:
        story.append(PageBreak())
        title = para(section.title, h1)
        title._outline = (section.anchor, section.title)  # type: ignore[attr-defined]
        story.append(title)
        for block in section.blocks:
            story += flowables(block)

    buf = io.BytesIO()
    pdf = Doc(buf, pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=1.8 * cm,
              bottomMargin=1.8 * cm, title=pdf_safe(doc.title),
              author=pdf_safe(f"{c.head_title} {c.region_name}"),
              subject=pdf_safe(f"{c.programme_name} ({c.programme_id}) - {doc.stream_id}"),
              keywords=f"head-hash:{doc.head_hash}", creator="smartcity-engine",
              invariant=1)
    pdf.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()


# ---------------------------------------------------------------------------- cohort XLSX
def cohort_xlsx(engine: Engine, programme_id: str) -> bytes:
    """Cohort progress for the ministry as an XLSX workbook.

    Sheets: ``Ringkasan - Summary`` (programme, counts per stage, quick wins by pillar),
    ``Daerah - Regions`` (one row per cohort region: stage, status, review rounds, findings,
    forms submitted/required per pillar) and ``Quick wins`` (one row per quick win).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    from engine.reports import cohort_report

    report = cohort_report(engine, programme_id)
    programme = report["programme"]
    pillars = [p["id"] for p in programme["pillars"]]
    plans = {p.region_code: p for p in engine.plans(programme_id)}
    regions = all_regions()
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6F0")

    def header(ws: Worksheet, row: Iterable[str]) -> None:
        ws.append(list(row))
        for c in ws[ws.max_row]:
            c.font, c.fill = bold, fill
            c.alignment = Alignment(wrap_text=True, vertical="top")

    def fit(ws: Worksheet, widths: dict[int, int] | None = None) -> None:
        for i, column in enumerate(ws.iter_cols(), start=1):
            longest = max((len(str(c.value)) for c in column if c.value is not None), default=8)
            ws.column_dimensions[get_column_letter(i)].width = (widths or {}).get(
                i, min(48, max(8, longest + 2)))

    wb = Workbook()
    summary = wb.active
    summary.title = "Ringkasan - Summary"
    summary.append(["Program / Programme", programme["name"]])
    summary.append(["ID", programme["programme_id"]])
    summary.append(["Tahun / Year", programme["year"]])
    summary.append(["Daerah / Regions", len(programme["region_codes"])])
    summary.append(["Terdaftar / Enrolled", len(report["regions"])])
    summary.append(["Belum terdaftar / Not enrolled",
                    ", ".join(report["not_enrolled"]) or "-"])
    summary.append(["Dikembalikan reviu / Returned by review", report["returned_by_review"]])
    for row in summary.iter_rows(min_row=1, max_row=summary.max_row, max_col=1):
        row[0].font = bold
    summary.append([])
    header(summary, ["Tahap / Stage", "Keterangan / Label", "Daerah / Regions"])
    for stage, count in report["stages"].items():
        summary.append([stage, STAGE_LABELS.get(stage, stage), count])
    summary.append([])
    header(summary, ["Pilar / Pillar", "Quick wins", "Rata-rata capaian % / Mean completion %"])
    by_pillar = report["quick_wins_by_pillar"]
    for pillar in pillars + sorted(set(by_pillar) - set(pillars)):
        slot = by_pillar.get(pillar, {"count": 0, "mean_completion": None})
        summary.append([pillar, slot["count"], slot["mean_completion"]])
    fit(summary, {1: 40, 2: 48, 3: 22})

    ws = wb.create_sheet("Daerah - Regions")
    header(ws, ["Kode / Code", "Nama / Name", "Jenis / Kind", "Provinsi / Province",
                "Tahap / Stage", "Status", "Putaran reviu / Review rounds",
                "Temuan / Findings", "Quick wins", "Rata-rata capaian % / Mean completion %",
                *[f"{p} {what}" for p in pillars for what in ("submitted", "required")],
                "Formulir masuk / Forms submitted", "Formulir wajib / Forms required"])
    for r in report["regions"]:
        forms = r["forms"]
        per_pillar = [forms.get(p, {}).get(what, 0) for p in pillars
                      for what in ("submitted", "required")]
        ws.append([r["region_code"], r["region_name"], r["kind"], r["province"], r["stage"],
                   r["status"], r["review_round"], r["findings"], len(r["quick_wins"]),
                   r["mean_completion"], *per_pillar,
                   sum(f["submitted"] for f in forms.values()),
                   sum(f["required"] for f in forms.values())])
    for code in report["not_enrolled"]:
        region = regions.get(code)
        ws.append([code, region.display_name if region else "", region.kind if region else "",
                   region.province if region else "", "not_enrolled", "", None, None, None,
                   None, *[None] * (2 * len(pillars)), None, None])
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = ws.dimensions
    fit(ws)

    qs = wb.create_sheet("Quick wins")
    header(qs, ["Kode daerah / Region code", "Daerah / Region", "ID", "Pilar / Pillar",
                "Nama / Name", "OPD / Agency", "Capaian % / Completion %",
                "Risiko / Risks", f"Risiko tinggi / High risks (>= {HIGH_RISK})"])
    for r in report["regions"]:
        plan = plans.get(r["region_code"])
        for q in sorted(r["quick_wins"], key=lambda q: q["id"]):
            qw = plan.quick_wins.get(q["id"]) if plan else None
            risks = risk_register(plan, q["id"]) if plan else []
            qs.append([r["region_code"], r["region_name"], q["id"], q["pillar"], q["name"],
                       qw.agency if qw else "", q["completion_percent"],
                       len(risks) if plan else q["risks"],
                       sum(1 for x in risks if x.score >= HIGH_RISK)])
    qs.freeze_panes = "D2"
    qs.auto_filter.ref = qs.dimensions
    fit(qs)

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
