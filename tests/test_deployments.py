"""prefect.yaml is valid: it deploys against a real (temporary) Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def _prefect(args: list[str], api_url: str, home: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PWD": str(ROOT), "PREFECT_HOME": home}
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_prefect_yaml_deploys_every_deployment_on_the_harness_pool(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    pool = _prefect(["work-pool", "create", "harness", "--type", "process"], api, str(tmp_path))
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = _prefect(["--no-prompt", "deploy", "--all"], api, str(tmp_path))
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    with get_client(sync_client=True) as client:
        found = {d.name: d for d in client.read_deployments()}
    for spec in declared:
        d = found[spec["name"]]
        assert d.work_pool_name == "harness"
        assert d.parameters == spec["parameters"]
        step = d.pull_steps[0]["prefect.deployments.steps.set_working_directory"]
        assert step["directory"] == str(ROOT)  # {{ $PWD }} resolved at deploy time
        crons = [s.schedule.cron for s in d.schedules]
        assert crons == [s["cron"] for s in spec["schedules"]]
    assert {"pilot-shadow-weekly", "pilot-shadow-daily", "drill-suite-nightly"} <= set(found)
