"""Plausible, seeded example content for the standard forms (demo and conformance kit).

Quick-win names come from real programme reports (engine/data/quickwins.csv).
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from engine.domain.plan import PlanState

# Agencies that usually own each pillar's work (codes from engine/data/agencies.csv).
PILLAR_AGENCIES = {
    "governance": ["DISKOMINFO", "BAG_ORGANISASI", "DPMPTSP", "DISDUKCAPIL", "BAPPEDA"],
    "branding": ["DISPAR", "DISBUD", "DISKOPUKM", "DPUPR"],
    "economy": ["DISKOPUKM", "DISPERINDAG", "BAPENDA", "BANK_BPD", "DISNAKER"],
    "living": ["DINKES", "RSUD", "DISHUB", "DPRKP", "DPUPR"],
    "society": ["DISDIK", "DISPUSIP", "SATPOL_PP", "BPBD", "POLRES", "DINSOS"],
    "environment": ["DLH", "DPUPR", "PDAM", "BPBD"],
}
FALLBACK_AGENCIES = ["DISKOMINFO", "BAPPEDA"]

_SWOT = {
    "strength": ["Komitmen kepala daerah terhadap transformasi digital",
                 "Jaringan fiber optik menjangkau kantor kecamatan",
                 "Sumber daya manusia TIK tersedia di OPD"],
    "weakness": ["Data antar-OPD belum terintegrasi", "Anggaran TIK terbatas",
                 "Belum ada SOP pengelolaan aplikasi"],
    "opportunity": ["Dukungan program nasional Gerakan Menuju 100 Smart City",
                    "Tingginya penggunaan ponsel pintar oleh warga",
                    "Kerja sama dengan perguruan tinggi setempat"],
    "threat": ["Ancaman keamanan siber", "Kesenjangan akses internet di desa",
               "Perubahan kebijakan anggaran pusat"],
}


@cache
def quick_win_names() -> dict[str, list[str]]:
    text = resources.files("engine.data").joinpath("quickwins.csv").read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        if row["pillar"]:
            out.setdefault(row["pillar"], []).append(row["name"])
    return out


def _agency(pillar: str, rng: random.Random) -> str:
    return rng.choice(PILLAR_AGENCIES.get(pillar, FALLBACK_AGENCIES))


def readiness(plan: PlanState, rng: random.Random, pillar: str,
              elements: tuple[str, ...]) -> dict[str, Any]:
    def area(name: str) -> dict[str, Any]:
        level = rng.randint(1, 4)
        return {"level": level, "findings": f"Kesiapan {name} {pillar} pada tingkat {level}",
                "evidence": [f"Dokumen {name} {plan.region_name} {plan.programme_year}"]
                if level >= 4 else []}
    return {"structure": area("struktur"), "infrastructure": area("infrastruktur"),
            "superstructure": area("suprastruktur"),
            "problems": [f"Layanan {pillar} belum terdigitalisasi penuh"],
            "potentials": [f"Potensi {pillar} {plan.region_name} belum dioptimalkan"]}


def swot(plan: PlanState, rng: random.Random, pillar: str,
         elements: tuple[str, ...]) -> dict[str, Any]:
    items = []
    for kind, texts in _SWOT.items():
        for n in range(rng.randint(1, 2)):
            items.append({"id": f"{kind[0].upper()}{n + 1}", "kind": kind,
                          "element": rng.choice(elements), "agency": _agency(pillar, rng),
                          "text": rng.choice(texts)})
    return {"items": items}


def innovation_programmes(plan: PlanState, rng: random.Random, pillar: str,
                          elements: tuple[str, ...]) -> dict[str, Any]:
    entry = plan.form("bimtek_1", pillar, "swot")
    refs = [i["id"] for i in entry.data["items"]] if entry else ["S1"]
    return {"programmes": [
        {"id": f"P{n + 1}", "element": el, "name": f"Program inovasi {el.replace('_', ' ')}",
         "agency": _agency(pillar, rng), "description": f"Digitalisasi {el.replace('_', ' ')} "
         f"di {plan.region_name}", "swot_refs": rng.sample(refs, k=min(2, len(refs))),
         "horizon": rng.choice(["short", "medium", "long"])}
        for n, el in enumerate(elements)]}


def quick_win_candidates(plan: PlanState, rng: random.Random, pillar: str,
                         elements: tuple[str, ...]) -> dict[str, Any]:
    names = quick_win_names().get(pillar) or [f"Layanan {pillar} daring"]
    chosen = rng.sample(names, k=min(rng.randint(1, 2), len(names)))
    entry = plan.form("bimtek_2", pillar, "innovation_programmes")
    programmes = [p["id"] for p in entry.data["programmes"]] if entry else ["P1"]
    return {"candidates": [
        {"quick_win_id": f"{pillar[:3].upper()}-QW{n + 1}", "name": name,
         "agency": _agency(pillar, rng), "element": rng.choice(elements),
         "programme_ref": rng.choice(programmes), "doable_within_12_months": True,
         "rationale": f"{name} dapat diwujudkan dalam 12 bulan dengan anggaran yang ada"}
        for n, name in enumerate(chosen)]}


def quick_win_profiles(plan: PlanState, rng: random.Random, pillar: str,
                       elements: tuple[str, ...]) -> dict[str, Any]:
    mine = [q for q in plan.quick_wins.values() if q.pillar == pillar]
    profiles = []
    for q in mine:
        risks = []
        for n in range(rng.randint(1, 3)):
            likelihood, impact = rng.randint(1, 5), rng.randint(1, 5)
            risks.append({"risk": rng.choice(["Keterlambatan pengadaan", "Resistensi pengguna",
                                               "Gangguan jaringan", "Kebocoran data"]),
                          "likelihood": likelihood, "impact": impact,
                          "handling": "Dipantau dalam rapat koordinasi bulanan",
                          "mitigation": "Rencana cadangan disiapkan" if likelihood * impact >= 10
                          else ""})
        profiles.append({"quick_win_id": q.quick_win_id, "objective": f"Mewujudkan {q.name}",
                         "beneficiaries": f"Warga {plan.region_name}",
                         "budget_idr": rng.randrange(50, 2000) * 1_000_000,
                         "output_indicator": None, "risks": risks})
    return {"profiles": profiles}


def roadmap(plan: PlanState, rng: random.Random, pillar: str,
            elements: tuple[str, ...]) -> dict[str, Any]:
    entry = plan.form("bimtek_2", pillar, "innovation_programmes")
    programmes = [p["id"] for p in entry.data["programmes"]] if entry else ["P1"]
    y = plan.programme_year
    return {"items": [
        {"horizon": h, "year": y + h, "element": rng.choice(elements),
         "programme_ref": rng.choice(programmes),
         "target": f"Target {h} tahun pilar {pillar}"}
        for h in (1, 5, 10)]}


def implementation_steps(plan: PlanState, rng: random.Random, pillar: str,
                         elements: tuple[str, ...]) -> dict[str, Any]:
    refs = [q.quick_win_id for q in plan.quick_wins.values() if q.pillar == pillar]
    entry = plan.form("bimtek_2", pillar, "innovation_programmes")
    refs += [p["id"] for p in entry.data["programmes"]] if entry else []
    start = date(plan.programme_year + 1, 1, 1)
    steps = []
    for n, ref in enumerate(refs[:4] or ["P1"]):
        s = start + timedelta(days=rng.randrange(0, 180))
        steps.append({"step_id": f"S{n + 1}", "ref": ref, "owner_agency": _agency(pillar, rng),
                      "start": s.isoformat(),
                      "end": (s + timedelta(days=rng.randrange(60, 300))).isoformat(),
                      "budget_idr": rng.randrange(10, 900) * 1_000_000,
                      "milestone": f"Tahap {n + 1} {ref} berjalan"})
    return {"steps": steps}


STANDARD_EXAMPLES = {
    "readiness": readiness,
    "swot": swot,
    "innovation_programmes": innovation_programmes,
    "quick_win_candidates": quick_win_candidates,
    "quick_win_profiles": quick_win_profiles,
    "roadmap": roadmap,
    "implementation_steps": implementation_steps,
}
