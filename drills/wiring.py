"""The system a virtual drill runs against, wired on the drill's clock: the real router, the
execution plane over a fault-injecting upstream, the telemetry store with its fault hook and
spool, the alert engine, and the ``DrillRecord`` the probes and checks read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.clock import VirtualClock
from drills.faults import FaultBoundaries, FaultyUpstream, StoreFaultHook
from drills.record import DrillRecord
from drills.scenario import Scenario


@dataclass
class DrillSystem:
    """The real parts one drill drives (built by ``wire``)."""

    config: Any
    traffic: Any
    router: Any
    upstream: FaultyUpstream
    plane: Any
    store_hook: StoreFaultHook
    store: Any
    spool_dir: Path
    boundaries: FaultBoundaries
    engine: Any
    record: DrillRecord


def wire(
    scenario: Scenario,
    *,
    clock: VirtualClock,
    qps: float,
    semantic: bool,
    run_id: str,
    db: str | None,
    spool_dir: str | Path | None,
    on_breaker: Callable[[Any], None],
) -> DrillSystem:
    """Build the system under drill. ``on_breaker`` hears every circuit-breaker change."""
    from drills.traffic import build_traffic
    from router.engine import Router
    from router.execution import ExecutionPlane
    from router.upstream import SimulatedUpstream
    from telemetry.alerts import AlertEngine, load_rules
    from telemetry.store import TelemetryStore

    config = scenario.router_config
    t = scenario.traffic
    traffic = build_traffic(
        qps, scenario.duration, seed=t.seed, corpus=t.corpus, arrivals=t.arrivals
    )
    router = Router(config, semantic=semantic, hash_key="env")
    router.set_toggle(scenario.execution_mode)
    inner = SimulatedUpstream(config, seed=config.execution.upstream.seed)
    upstream = FaultyUpstream(inner, clock.monotonic, seed=t.seed)
    plane = ExecutionPlane(config, upstream, now=clock.monotonic, on_breaker_event=on_breaker)
    store_hook = StoreFaultHook()
    spool = (
        Path(spool_dir) if spool_dir else (Path(".harness") / "spool" / "drills" / run_id).resolve()
    )
    ensure_sqlite_dir(db)
    store = TelemetryStore(
        db, spool_dir=spool, retries=1, retry_delay_s=0.0, write_failure_hook=store_hook
    )
    engine = AlertEngine([*load_rules(), *scenario.inline_rules], context="drill")
    record = DrillRecord(
        start=clock.start,
        duration_s=scenario.duration,
        model_tiers={m.name: m.tier for m in config.models},
        interactive_tiers=tuple(config.routing.interactive_tiers),
        arrivals=traffic.offsets,
        spool_rows_now=store.spool.rows_pending,
        open_breakers_now=lambda: [m for m, s in plane.breaker_states().items() if s == "open"],
        rules={r.name: r.condition for r in engine.rules},
    )
    return DrillSystem(
        config=config,
        traffic=traffic,
        router=router,
        upstream=upstream,
        plane=plane,
        store_hook=store_hook,
        store=store,
        spool_dir=spool,
        boundaries=FaultBoundaries(upstream, store_hook),
        engine=engine,
        record=record,
    )


def ensure_sqlite_dir(url: str | None) -> None:
    """A drill against a new SQLite file: create its folder (setup, not a fault to measure)."""
    if not url or not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
