"""The events every scenario writes: real plan events of ~300 bytes of canonical JSON."""

from __future__ import annotations

import uuid
from typing import Any

from engine.domain import plan as P
from engine.domain.events import Event, encode
from engine.records import EventMeta, NewEvent

PILLARS = ("governance", "branding", "economy", "living", "society", "environment")
FORMS = 20  # distinct forms a plan's submissions cycle through
QUICK_WINS = 10  # quick wins a plan's progress reports cycle through


def form_data(i: int) -> dict[str, Any]:
    """What an officer fills in; with its envelope, ~300 bytes of canonical JSON."""
    return {
        "summary": f"Ringkasan analisis strategis wilayah {i:06d} pilar tata kelola",
        "score": i % 100,
        "owner": "Dinas Komunikasi dan Informatika",
        "evidence": f"https://jdih.example.go.id/dokumen/{i:08d}",
        "items": ["rencana", "kebijakan", "anggaran"],
    }


def form_event(i: int) -> P.FormSubmitted:
    return P.FormSubmitted(pillar=PILLARS[i % len(PILLARS)], stage="bimtek_1",
                           form=f"form_{i % FORMS:02d}", data=form_data(i))


def progress_event(i: int) -> P.QuickWinProgressReported:
    return P.QuickWinProgressReported(
        quick_win_id=f"qw-{i % QUICK_WINS:02d}", completion_percent=i % 101,
        reason=f"Pengadaan perangkat selesai; pelatihan operator berjalan di {i % 40} kecamatan "
               "sesuai jadwal triwulan, anggaran perubahan diajukan ke DPRD",
        evidence=f"https://jdih.example.go.id/laporan/qw-{i % QUICK_WINS:02d}/{i:08d}")


def plan_history(n: int, region: str = "35.02", programme: str = "bench") -> list[Event]:
    """A plan of ``n`` events: enrolled, bimtek I open, ten quick wins proposed, then form
    submissions and quick-win progress reports alternating."""
    head: list[Event] = [
        P.PlanEnrolled(programme_id=programme, region_code=region, region_name="Ponorogo",
                       region_kind="kabupaten", head_title="Bupati", pillars=PILLARS,
                       programme_year=2018),
        P.StageStarted(stage="bimtek_1"),
    ]
    head += [P.QuickWinProposed(quick_win_id=f"qw-{q:02d}", pillar=PILLARS[q % len(PILLARS)],
                                name=f"Layanan terpadu {q}", agency="Diskominfo",
                                description="Aplikasi layanan publik satu pintu")
             for q in range(QUICK_WINS)]
    body = [form_event(i) if i % 2 else progress_event(i) for i in range(max(0, n - len(head)))]
    return (head + body)[:n]


def encoded(events: list[Event]) -> list[NewEvent]:
    return [encode(e) for e in events]


def meta(command_id: str | None = None, actor: str = "diskominfo-35.02",
         role: str = "regional_officer") -> EventMeta:
    command_id = command_id or str(uuid.uuid4())
    return EventMeta(actor_id=actor, actor_role=role, command_id=command_id,
                     correlation_id=command_id)


def average_payload_bytes(events: list[NewEvent]) -> float:
    return sum(len(e.payload) for e in events) / max(1, len(events))
