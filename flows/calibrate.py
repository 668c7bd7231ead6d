"""Orchestration for the steps after a verdict: calibrate a run's thresholds from its stored
scores, and compare two stored runs. The logic lives in telemetry.calibration and
telemetry.run_compare; this module reads the store and writes the outputs."""

from __future__ import annotations

from pathlib import Path

from telemetry.calibration import CalibrationError

READ_COLUMNS = (
    "query_id",
    "ts",
    "complexity_score",
    "complexity_level",
    "borderline",
    "upscaled",
    "domain",
    "domain_confidence",
    "model",
    "model_tier",
    "tokens_estimate",
    "confidence_complexity",
    "confidence_model_fit",
    "confidence_execution_fit",
    "confidence_overall",
    "reason_codes",
    "latency_estimate_ms",
    "cost_estimate_usd",
)


def _pilot_run(store, run_id: str):
    from telemetry.evidence_store import require_pilot_run

    try:
        return require_pilot_run(store, run_id, finished=False)
    except (LookupError, ValueError) as exc:
        raise CalibrationError(str(exc)) from None


def run_calibration(
    run_id: str, *, out: Path, db: str | None, config: str | None, reports_out: Path
) -> tuple[dict, Path]:
    import yaml

    from reports.decision_pages import build_calibration_page
    from router.config import ConfigError, load_config
    from telemetry.calibration import calibrate, candidate_yaml
    from telemetry.errors import StoreUnavailableError
    from telemetry.evidence_store import EvidenceError, load_evidence, load_labels
    from telemetry.readiness import Measurement
    from telemetry.store import TelemetryStore

    try:
        store = TelemetryStore(db)
    except Exception as exc:  # noqa: BLE001 - any store problem is one clear error here
        raise CalibrationError(f"telemetry store: {exc}") from None
    try:
        run = _pilot_run(store, run_id)
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise CalibrationError(str(exc)) from None
        if cfg.config_hash != run.config_hash:
            raise CalibrationError(
                f"run {run_id!r} used config {run.config_hash}, this config is "
                f"{cfg.config_hash}; pass the run's config with --config"
            )
        stored = store.read(run_id=run_id, columns=list(READ_COLUMNS))
        if stored.empty:
            raise CalibrationError(
                f"run {run_id!r} has no stored decisions to calibrate on (pruned after the "
                "retention period?)"
            )
        labels = load_labels(store, run_id)
        try:
            evidence = load_evidence(store, run_id)
        except EvidenceError:
            evidence = None
    except StoreUnavailableError as exc:
        raise CalibrationError(str(exc)) from None
    finally:
        store.close()
    inherited = {}
    if evidence is not None:
        for c in evidence["criteria"]:
            if c["id"] in ("data_quality", "determinism", "noisy_rules"):
                measure = {
                    "data_quality": "quality_pass_rate",
                    "determinism": "determinism_rate",
                    "noisy_rules": "noisy_rule_count",
                }[c["id"]]
                inherited[measure] = (
                    None
                    if c["value"] is None
                    else Measurement(
                        c["value"],
                        c["n"],
                        c["ci_low"],
                        c["ci_high"],
                        method=f"{c['method']}; carried over from the run",
                        exact=True,
                        no_data=c["reason"] if c["status"] == "inconclusive" else None,
                    )
                )
    result = calibrate(stored, cfg, run_id=run_id, labels=labels, inherited=inherited)
    data = result.to_dict()
    if result.proposed is not None:
        raw = candidate_yaml(cfg, config, result.proposed, out)
        header = (
            f"# Written by `harness pilot calibrate {run_id}`: thresholds and borderline band\n"
            f"# swept on the run's stored scores. {result.message}\n"
        )
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        written = load_config(out)  # refuse to hand out a config the router would refuse
        data["candidate_config_hash"] = written.config_hash
    page = build_calibration_page(data, Path(reports_out), f"calibrate-{run_id}")
    return data, page


def compare_stored_runs(
    run_a: str, run_b: str, *, db: str | None, out: Path, tolerance: float, min_points: int
) -> tuple[dict, Path]:
    from reports.decision_pages import build_run_comparison_page
    from router.config import load_config
    from telemetry import pilot_evidence as ev
    from telemetry.run_compare import compare_runs
    from telemetry.store import TelemetryStore

    store = TelemetryStore(db)
    try:
        frames, windows = {}, {}
        for rid in (run_a, run_b):
            run = _pilot_run(store, rid)
            df = store.read(run_id=rid, columns=list(ev.SLIM_COLUMNS))
            if df.empty:
                raise ValueError(f"run {rid!r} has no stored decisions")
            frames[rid] = ev.slim(df)
            windows[rid] = list(run.parameters.get("window", []))
    except CalibrationError as exc:
        raise LookupError(str(exc)) from None
    finally:
        store.close()
    tiers = load_config(None).routing.interactive_tiers
    result = compare_runs(
        frames[run_a],
        frames[run_b],
        run_a=run_a,
        run_b=run_b,
        window_a=windows[run_a],
        window_b=windows[run_b],
        interactive_tiers=tiers,
        tolerance=tolerance,
        min_points=min_points,
    ).to_dict()
    page = build_run_comparison_page(result, Path(out), f"compare-{run_a}-vs-{run_b}"[:200])
    return result, page
