"""`harness router fit`: refit the router's learned head on labelled traffic.

Heavy imports (sklearn, torch via the embedding model) happen inside the command, so
`harness --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import console, fail

app = typer.Typer(help="Calibrate the router on labelled traffic.", no_args_is_help=True)


def _names(value: str | None) -> set[str] | None:
    return {x.strip() for x in value.split(",") if x.strip()} if value else None


@app.command("fit")
def fit(
    corpus: Annotated[
        list[Path],
        typer.Option(
            "--corpus",
            help="Labelled JSONL (text, expected_level, optional expected_domain, source); "
            "repeat for several files.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Config to write; weights and data card go beside it.")
    ],
    base_config: Annotated[
        Path | None,
        typer.Option(
            "--base-config", help="Config whose catalog and rules to keep (default: packaged)."
        ),
    ] = None,
    sources: Annotated[
        str | None, typer.Option("--sources", help="Comma-separated sources to fit on.")
    ] = None,
    exclude_sources: Annotated[
        str | None, typer.Option("--exclude-sources", help="Comma-separated sources to leave out.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Embedding store to reuse (default: none, every text is encoded afresh: int8 "
            "vectors depend on their batch-mates, so a store filled by other runs would make "
            "the head depend on them).",
        ),
    ] = None,
) -> None:
    """Fit the learned head (levels, domains, cascade margin) and write a config that --config loads."""
    from router.config import ConfigError
    from router.fit import fit as run_fit
    from router.head import HeadError
    from router.quality import CorpusError

    try:
        report = run_fit(
            corpus,
            out,
            base_config=base_config,
            sources=_names(sources),
            exclude_sources=_names(exclude_sources),
            cache_dir=cache_dir,
            progress=lambda m: console.print(f"[dim]{m} ...[/dim]"),
        )
    except (CorpusError, ConfigError, HeadError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(
        f"fitted on {report.rows} rows from {len(report.sources)} sources in {report.seconds} s; "
        f"levels {report.level_counts}; head domains {', '.join(report.head_domains)}; "
        f"cascade margin {report.cascade_margin} (fast head alone on "
        f"{report.fast_share:.0%} of the fitting rows)"
    )
    console.print(f"config:    {report.config_path}")
    console.print(f"weights:   {report.weights_path}")
    console.print(f"data card: {report.card_path}")
