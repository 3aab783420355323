"""Who may do what. Enforced in the engine, whatever surface sends the command."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from engine.errors import PermissionDenied
from engine.regions import CODE_PATTERN


class Role(StrEnum):
    OPERATOR = "operator"  # ministry operator (Kominfo / Komdigi, Ditjen Aptika)
    REGIONAL_OFFICER = "regional_officer"  # officer of one region (e.g. its Diskominfo)
    REVIEWER = "reviewer"  # expert team (tenaga ahli)
    REGENT = "regent"  # Bupati or Walikota of one region
    AUDITOR = "auditor"  # reads everything, writes nothing


REGIONAL_ROLES = frozenset({Role.REGIONAL_OFFICER, Role.REGENT})


class Actor(BaseModel):
    """The person (or flow) issuing a command, with the role they act in."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: Role
    region: str | None = None  # the one region a regional role acts for

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("actor id must not be blank")
        return v

    @model_validator(mode="after")
    def _region_for_regional_roles(self) -> "Actor":
        if self.role in REGIONAL_ROLES:
            if not self.region:
                raise ValueError(f"a {self.role.value} acts for one region: give its code")
            if not CODE_PATTERN.match(self.region):
                raise ValueError(f"region {self.region!r} is not a Kemendagri code like 35.02")
        elif self.region is not None:
            raise ValueError(f"a {self.role.value} is not bound to a region")
        return self


# command name -> roles allowed to issue it.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "CreateProgramme": frozenset({Role.OPERATOR}),
    "AddRegion": frozenset({Role.OPERATOR}),
    "ScheduleStage": frozenset({Role.OPERATOR}),
    "EnrolRegion": frozenset({Role.OPERATOR}),
    "StartStage": frozenset({Role.OPERATOR}),
    "CompleteStage": frozenset({Role.OPERATOR}),
    "SubmitForm": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "ProposeQuickWin": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "RecordQuickWinRisk": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "ReportQuickWinProgress": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "SubmitForReview": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "RecordReviewFinding": frozenset({Role.REVIEWER}),
    "PassReview": frozenset({Role.REVIEWER}),
    "ReturnForRevision": frozenset({Role.REVIEWER}),
    "ApproveByRegent": frozenset({Role.REGENT}),
    "RefuseApproval": frozenset({Role.REGENT}),
    "RecordBimtekSession": frozenset({Role.OPERATOR}),
    "PresentQuickWin": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "AdviseQuickWin": frozenset({Role.REVIEWER}),
    "OpenEvaluation": frozenset({Role.OPERATOR}),
    "SubmitEvaluation": frozenset({Role.OPERATOR, Role.REGIONAL_OFFICER}),
    "ScoreEvaluation": frozenset({Role.REVIEWER}),
}


def authorize(actor: Actor, command_name: str, region_code: str | None) -> None:
    """Raise PermissionDenied unless ``actor`` may issue ``command_name`` on ``region_code``."""
    allowed = PERMISSIONS.get(command_name)
    if allowed is None:
        raise PermissionDenied(f"no role may issue unknown command {command_name!r}")
    if actor.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDenied(
            f"{actor.id} acts as {actor.role.value}, which may not {command_name}; allowed: {names}"
        )
    if actor.role in REGIONAL_ROLES and region_code is not None and actor.region != region_code:
        raise PermissionDenied(
            f"{actor.id} is {actor.role.value} of region {actor.region} and may not act on "
            f"the plan of region {region_code}"
        )
