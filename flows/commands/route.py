"""`harness route`: one query as JSON (or a readable account), or a JSONL file to parquet."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, fail
from telemetry.exit_codes import ExitCode


def route(
    text: Annotated[
        str | None, typer.Argument(help="The query to route (omit with --file).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSONL with 'text' and optional 'query_id'.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Parquet file for --file.")
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Print a readable account.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Router config YAML.")] = None,
    rule_only: Annotated[
        bool, typer.Option("--rule-only", help="Skip the semantic scorer (no model load).")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id for the decisions.")
    ] = None,
) -> None:
    """Route one query (prints the decision as JSON) or a JSONL file (--file ... --out ...)."""
    from router.config import ConfigError
    from router.engine import InvalidQueryError, Router

    if (text is None) == (file is None):
        fail("give either a query text or --file (not both)")
    try:
        router = Router.from_config(config, semantic=False if rule_only else None)
    except ConfigError as exc:
        fail(str(exc))
    if file is not None:
        if out is None:
            fail("--file needs --out FILE.parquet")
        _route_file(router, file, out, run_id)
        return
    try:
        if explain:
            _print_explanation(router.explain(text, run_id=run_id))
        else:
            sys.stdout.write(
                json.dumps(router.route(text, run_id=run_id).to_dict(), indent=2) + "\n"
            )
    except InvalidQueryError as exc:
        fail(str(exc))


def _route_file(router, file: Path, out: Path, run_id: str | None) -> None:
    """Route a JSONL file under the corpus loader's row rules: every non-blank line is either
    routed or reported (line number, reason code; never the text), duplicates included."""
    import pyarrow.parquet as pq
    from rich.markup import escape

    from data.corpus import LINE_LIMIT_BYTES, Reason, bounded_lines, check_single_row
    from router.engine import BatchInputError

    texts: list[str] = []
    qids: list[str] = []
    bad: list[str] = []
    first_line: dict[str, int] = {}
    lines = 0
    try:
        with file.open("rb") as fh:
            for lineno, line in enumerate(bounded_lines(fh), start=1):
                if isinstance(line, int):
                    lines += 1
                    bad.append(
                        f"{file}:{lineno}: {Reason.TEXT_TOO_LONG}: line has {line:,} bytes "
                        f"(limit {LINE_LIMIT_BYTES:,})"
                    )
                    continue
                if not line.strip():
                    continue
                lines += 1
                try:
                    obj = json.loads(line.decode("utf-8", "surrogateescape"))
                except json.JSONDecodeError as exc:
                    bad.append(
                        f"{file}:{lineno}: {Reason.MALFORMED_ROW}: not valid JSON ({exc.msg})"
                    )
                    continue
                except (RecursionError, ValueError):
                    bad.append(
                        f"{file}:{lineno}: {Reason.MALFORMED_ROW}: JSON nested too deeply or a "
                        "number too large"
                    )
                    continue
                raw_qid = obj.get("query_id") if isinstance(obj, dict) else None
                if not isinstance(obj, dict) or (
                    raw_qid is not None
                    and (isinstance(raw_qid, bool) or not isinstance(raw_qid, str | int))
                ):
                    bad.append(
                        f"{file}:{lineno}: {Reason.MALFORMED_ROW}: needs an object with a string "
                        "'text' and an optional string or integer 'query_id'"
                    )
                    continue
                qid = f"line-{lineno}" if raw_qid is None else str(raw_qid)
                problem = check_single_row(qid, obj.get("text"))
                if problem is None and qid in first_line:
                    problem = (
                        Reason.DUPLICATE_QUERY_ID,
                        f"query_id already routed at line {first_line[qid]}",
                    )
                if problem is not None:
                    shown = problem[0] not in (Reason.INVALID_VALUE, Reason.INVALID_ENCODING)
                    where = f" (query_id {qid})" if shown and raw_qid is not None else ""
                    bad.append(f"{file}:{lineno}{where}: {problem[0]}: {problem[1]}")
                    continue
                first_line[qid] = lineno
                texts.append(obj["text"])
                qids.append(qid)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    with console.status(f"routing {len(texts):,} queries"):
        try:
            table = router.route_batch(texts, query_ids=qids, run_id=run_id)
        except BatchInputError as exc:
            table = exc.table
            bad.extend(f"{file}: query_id {e.query_id}: {e.reason}" for e in exc.errors)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
    except OSError as exc:
        fail(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}")
    console.print(
        f"routed {table.num_rows:,} of {lines:,} queries -> {escape(str(out))}", soft_wrap=True
    )
    if bad:
        console.print(f"[yellow]{len(bad)} lines not routed:[/yellow]")
        for line in bad[:20]:
            console.print(f"  {escape(line)}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR)


def _print_explanation(ex) -> None:
    from rich.table import Table

    from router.decision import ReasonCode

    d = ex.decision
    console.print(
        f"[bold]{d.complexity_level}[/bold] (score {d.complexity_score:.3f}"
        f"{', borderline' if d.borderline else ''}{', upscaled' if d.upscaled else ''}) -> "
        f"[bold]{d.model}[/bold] ({d.model_tier}), domain {d.domain} ({d.domain_confidence:.2f})"
    )
    sem = "off" if ex.semantic_score is None else f"{ex.semantic_score:.3f}"
    console.print(f"rule score {ex.rule_score:.3f}, semantic score {sem}")
    if ex.level_similarity:
        t = Table("level", "similarity", "probability", "nearest exemplar")
        for lv, sim in ex.level_similarity.items():
            phrase, _ = ex.nearest_exemplars[lv]
            t.add_row(lv, f"{sim:.3f}", f"{ex.level_probability[lv]:.3f}", phrase[:70])
        console.print(t)
    feats = ", ".join(f"{k} {v:.2f}" for k, v in ex.features.items() if v)
    console.print(f"rule features: {feats or 'none'}")
    console.print(
        f"confidence: overall {d.confidence_overall:.3f} (complexity {d.confidence_complexity:.3f},"
        f" model fit {d.confidence_model_fit:.3f}, execution fit {d.confidence_execution_fit:.3f})"
    )
    console.print(
        f"estimates: {d.tokens_estimate} tokens, ${d.cost_estimate_usd:.6f}, "
        f"{d.latency_estimate_ms:.0f} ms to first token, {d.execution_style}"
    )
    console.print(f"execution mode: {d.execution_mode} (active: {d.execution_mode_active})")
    console.print("reasons:")
    for code in d.reasons:
        console.print(f"  {code}: {ReasonCode.parse(code).label}")
