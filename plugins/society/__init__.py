"""Smart society (Masyarakat Cerdas): community interaction, learning, security."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

from pydantic import Field

from engine.errors import FieldError
from engine.forms import AgencyCode, Form, StandardPillar, Text, agencies
from engine.pillars import FormSpec


class Channel(Form):
    name: Text
    kind: Literal["complaint", "forum", "social_media", "app", "call_centre"]
    agency: AgencyCode
    monthly_users: int = Field(ge=0)


class CommunityChannels(Form):
    """Bimtek II: how citizens reach the government and each other."""

    channels: list[Channel] = Field(min_length=1)


def rule_channels(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    errors = [FieldError(f"channels[{n}].agency", f"{c['agency']!r} is not a known agency code",
                         fix="e.g. DISKOMINFO")
              for n, c in enumerate(data["channels"]) if c["agency"] not in agencies()]
    if not any(c["kind"] in ("complaint", "call_centre") for c in data["channels"]):
        errors.append(FieldError("channels", "no complaint channel listed",
                                 fix="add the public complaint channel (e.g. SP4N-LAPOR!)"))
    return errors


def example_channels(plan: Any, rng: Any) -> dict[str, Any]:
    return {"channels": [
        {"name": "SP4N-LAPOR!", "kind": "complaint", "agency": "DISKOMINFO",
         "monthly_users": rng.randrange(100, 5_000)},
        {"name": f"Forum Smart City {plan.region_name}", "kind": "forum",
         "agency": "FORUM_KOMUNITAS", "monthly_users": rng.randrange(20, 500)}]}


PILLAR = StandardPillar(
    id="society",
    name_id="Masyarakat Cerdas",
    name_en="Smart Society",
    description="Interaksi masyarakat, ekosistem belajar dan keamanan.",
    elements=(
        ("community_interaction", "Interaksi masyarakat", "Community interaction"),
        ("learning_ecosystem", "Ekosistem belajar", "Learning ecosystem"),
        ("security", "Keamanan", "Security"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="society", stage="bimtek_2", form="community_channels",
                          model=CommunityChannels, title_id="Kanal interaksi masyarakat",
                          title_en="Community channels",
                          example=example_channels)],
    extra_rules={"community_channels": [rule_channels]},
)
