"""A real Prometheus for live drills: it scrapes the service and evaluates the exported rules.

The drill's clock is virtual (a 30 min scenario runs in ``duration / scale`` wall seconds), so the
rules Prometheus loads are the shipped rules of the drill context with their windows and ``for``
durations divided by the time scale (``1m`` at scale 40 is ``1s500ms``), scraped and evaluated
every sixth of the shortest window. (Evaluating once per window, like the engine's buckets, adds
up to a whole window of detection delay, because Prometheus's evaluation phase is not aligned
with the fault: ``fallback_rate_high`` then fired 140 s after the fault, over its 2m limit.)
After the traffic, ``ALERTS{alertstate="firing"}`` over the
drill's wall span gives each alert's firing intervals, mapped back onto the virtual timeline:
these, not the harness's own engine, feed the ``alert_fired`` / ``alert_not_fired`` guarantees.
Prometheus is started (``procs.start``, its own process group) and stopped by PID by the caller.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

REQUIRE_ENV = "HARNESS_REQUIRE_PROMETHEUS"
EVALUATORS = ("auto", "prometheus", "harness")


class PrometheusError(RuntimeError):
    """Prometheus did not start, did not scrape the service, or a rule failed to evaluate."""


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def choose_evaluator(evaluator: str) -> str:
    """``auto`` means Prometheus when it is on PATH (required in CI), else the harness engine."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"--evaluator must be one of {', '.join(EVALUATORS)}, not {evaluator!r}")
    found = prometheus_binary() is not None
    if evaluator == "prometheus" or (evaluator == "auto" and os.environ.get(REQUIRE_ENV) == "1"):
        if not found:
            raise PrometheusError(
                "prometheus is not on PATH (Debian: apt-get install prometheus)"
                + (f"; {REQUIRE_ENV}=1 requires it" if evaluator == "auto" else "")
            )
        return "prometheus"
    if evaluator == "auto":
        return "prometheus" if found else "harness"
    return evaluator


def _ms(td: pd.Timedelta) -> str:
    return f"{max(1, int(round(td / pd.Timedelta(milliseconds=1))))}ms"


def scaled_rules(rules: list[Any], scale: float, context: str = "drill") -> list[Any]:
    """The rules with their ``context`` window and ``for`` divided by ``scale`` (whole ms)."""
    out = []
    for r in rules:
        if not r.applies(context):
            out.append(r)
            continue
        w = pd.Timedelta(r.window[context] / scale).round("ms")
        f = pd.Timedelta(r.for_[context] / scale).round("ms")
        out.append(
            r.model_copy(
                update={
                    "window": {**r.window, context: max(w, pd.Timedelta(milliseconds=1))},
                    "for_": {**r.for_, context: f},
                }
            )
        )
    return out


@dataclass
class PromAlert:
    """One firing interval as Prometheus recorded it, in wall (unix) seconds."""

    rule: str
    severity: str
    fired_unix: float
    resolved_unix: float | None
    value: float | None = None


@dataclass
class LivePrometheus:
    """A running Prometheus for one drill (``child`` is stopped by the caller's ``finally``)."""

    child: Any
    url: str
    rules_path: Path
    interval_s: float
    eval_s: float
    version: str
    exported: list[str]
    skipped: list[str]
    series: dict[str, str] = field(default_factory=dict)  # rule -> recorded series it compares
    targets_path: Path | None = None

    def set_targets(self, service_urls: list[str]) -> None:
        """Scrape these service processes (restarts on new ports); file SD picks them up."""
        assert self.targets_path is not None
        _write_targets(self.targets_path, *service_urls)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "prometheus",
            "version": self.version,
            "url": self.url,
            "pid": self.child.pid,
            "rules_file": str(self.rules_path),
            "scrape_interval": _ms(pd.Timedelta(seconds=self.interval_s)),
            "evaluation_interval": _ms(pd.Timedelta(seconds=self.eval_s)),
            "rules_evaluated_by_prometheus": self.exported,
            "rules_not_exported": self.skipped,
        }

    # --- reading --------------------------------------------------------------------------------
    def _get(self, path: str, **params: Any) -> Any:
        import httpx

        r = httpx.get(self.url + path, params=params, timeout=10)
        r.raise_for_status()
        body = r.json()
        if body.get("status") != "success":
            raise PrometheusError(f"prometheus {path}: {body.get('error', body)}")
        return body["data"]

    def wait_scraping(self, timeout_s: float = 60.0) -> None:
        """Until the service target is up and every rule group has evaluated once."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                up = self._get("/api/v1/query", query='up{job="amaima"}')["result"]
                groups = self._get("/api/v1/rules")["groups"]
                evaluated = bool(groups) and all(
                    not g.get("lastEvaluation", "0001").startswith("0001") for g in groups
                )
                if up and up[0]["value"][1] == "1" and evaluated:
                    return
                last = f"up={up[0]['value'][1] if up else 'none'}"
            except Exception as exc:  # noqa: BLE001 - still starting
                last = f"{type(exc).__name__}: {str(exc)[:100]}"
            time.sleep(self.interval_s)
        raise PrometheusError(f"prometheus does not scrape the service after {timeout_s:.0f} s "
                              f"({last}); log:\n{self.child.log_tail()}")  # fmt: skip

    def rule_errors(self) -> list[str]:
        """Rules whose last evaluation failed (a broken expression is a drill error, not quiet)."""
        out = []
        for g in self._get("/api/v1/rules")["groups"]:
            for r in g["rules"]:
                if r.get("health") == "err":
                    out.append(f"{r.get('name')}: {r.get('lastError', '')[:200]}")
        return out

    def firing_intervals(self, start_unix: float, end_unix: float) -> list[PromAlert]:
        """Each alert's firing intervals between the two wall times, from ``ALERTS``."""
        step = self.interval_s
        data = self._get(
            "/api/v1/query_range",
            query='ALERTS{alertstate="firing"}',
            start=f"{start_unix:.3f}",
            end=f"{end_unix:.3f}",
            step=f"{step:.3f}",
        )
        out: list[PromAlert] = []
        for s in data["result"]:
            rule = s["metric"].get("alertname", "?")
            sev = s["metric"].get("severity", "")
            ts = [float(t) for t, _ in s["values"]]
            run_start = prev = ts[0]
            for t in ts[1:] + [None]:
                if t is not None and t - prev <= 1.5 * step + 1e-6:
                    prev = t
                    continue
                resolved = None if t is None and prev >= end_unix - 1.5 * step else prev + step
                out.append(PromAlert(rule, sev, run_start, resolved))
                if t is not None:
                    run_start = prev = t
        for a in out:
            a.value = self._value_at(a.rule, a.fired_unix)
        return sorted(out, key=lambda a: a.fired_unix)

    def _value_at(self, rule: str, unix: float) -> float | None:
        series = self.series.get(rule)
        if not series:
            return None
        try:
            res = self._get("/api/v1/query", query=series, time=f"{unix:.3f}")["result"]
            return float(res[0]["value"][1]) if res else None
        except Exception:  # noqa: BLE001 - the value is a detail of the evidence
            return None


def _write_targets(path: Path, *service_urls: str) -> None:
    import json

    tmp = path.with_suffix(".tmp")
    hosts = [u.split("://", 1)[-1].rstrip("/") for u in service_urls]
    tmp.write_text(json.dumps([{"targets": hosts}]))
    tmp.replace(path)  # atomic: Prometheus never reads half a file


def start_prometheus(
    rules: list[Any], scale: float, service_url: str, work: Path, *, context: str = "drill"
) -> LivePrometheus:
    """Write the scaled rules and a config scraping ``service_url``; start Prometheus on a free
    port and wait until it scrapes. The returned ``child`` must be stopped by the caller."""
    import yaml

    from live import procs
    from telemetry.alerts import prometheus_rules, prometheus_series

    binary = prometheus_binary()
    if binary is None:
        raise PrometheusError("prometheus is not on PATH (Debian: apt-get install prometheus)")
    work = Path(work).resolve() / "prometheus"  # Prometheus resolves paths from its config file
    work.mkdir(parents=True, exist_ok=True)
    scaled = scaled_rules(rules, scale, context)
    doc, skipped = prometheus_rules(scaled, context=context)
    rules_path = work / "rules.yml"
    rules_path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    exported = [r["alert"] for r in doc["groups"][1]["rules"]]
    series = {r.name: prometheus_series(r.metric, r.window_for(context)) for r in scaled
              if r.name in exported}  # fmt: skip
    windows = [r.window_for(context) for r in scaled if r.name in exported]
    shortest = min(windows, default=pd.Timedelta(minutes=1))
    interval = min(max(shortest / 6, pd.Timedelta(milliseconds=100)), pd.Timedelta(seconds=15))
    interval = pd.Timedelta(interval).round("ms")
    evaluation = interval
    targets_path = work / "targets.json"
    _write_targets(targets_path, service_url)
    config = {
        "global": {"scrape_interval": _ms(interval), "evaluation_interval": _ms(evaluation),
                   "scrape_timeout": _ms(interval)},
        "rule_files": [str(rules_path)],
        "scrape_configs": [{"job_name": "amaima", "metrics_path": "/metrics",
                            "scheme": service_url.split("://", 1)[0],
                            "file_sd_configs": [{"files": [str(targets_path)],
                                                 "refresh_interval": "1s"}]}],
    }  # fmt: skip
    cfg_path = work / "prometheus.yml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        version_text = (version.stdout or version.stderr).split("\n", 1)[0].strip()
    except (OSError, subprocess.SubprocessError):
        version_text = "unknown"
    port = procs.free_port()
    child = procs.start(
        "prometheus",
        [binary, f"--config.file={cfg_path}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d",
         "--log.level=warn"],
        url=f"http://127.0.0.1:{port}", ready_path="/-/ready", log_dir=work,
    )  # fmt: skip
    prom = LivePrometheus(
        child, child.url, rules_path, interval.total_seconds(), evaluation.total_seconds(),
        version_text, exported, skipped,
        series, targets_path,
    )  # fmt: skip
    try:
        prom.wait_scraping()
    except BaseException:
        procs.stop(child)
        raise
    return prom
