"""The deployment definitions (prefect.yaml, flows/serve.py) point at real flows with
parameters those flows take. Nothing here needs a Prefect server."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def load_flow(entrypoint: str):  # type: ignore[no-untyped-def]
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def test_prefect_yaml_deployments_point_at_flows_with_their_parameters() -> None:
    from prefect import Flow

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    names = [d["name"] for d in spec["deployments"]]
    assert names == ["stage", "report", "reminders", "rehearsal"]
    for deployment in spec["deployments"]:
        flow = load_flow(deployment["entrypoint"])
        assert isinstance(flow, Flow), deployment["entrypoint"]
        signature = inspect.signature(flow.fn)
        given = set(deployment["parameters"])
        assert given <= set(signature.parameters), (deployment["name"], given)
        required = {n for n, p in signature.parameters.items()
                    if p.default is inspect.Parameter.empty}
        assert required <= given, (deployment["name"], required - given)
        assert deployment["parameters"]["db_url"] == "{{ $SMARTCITY_DATABASE_URL }}"
        assert deployment["work_pool"]["name"] == "smartcity"


def test_served_deployments_match_the_yaml() -> None:
    from flows.serve import deployments

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    built = {d.name: d for d in deployments("postgresql://db/smartcity", "m100-2026")}
    assert set(built) == {d["name"] for d in spec["deployments"]}
    for d in spec["deployments"]:
        assert built[d["name"]].entrypoint == d["entrypoint"]
    assert built["report"].schedules and built["reminders"].schedules  # daily


@pytest.mark.parametrize("command", ["prefect work-pool create smartcity --type process",
                                     "prefect deploy --all", "prefect worker start --pool smartcity",
                                     "python -m flows.serve"])
def test_deployment_guide_gives_the_commands(command: str) -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert command in guide
