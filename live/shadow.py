"""Shadow a deployed router: replay texts against any service that speaks ``POST /v1/simulate``
and return what it decided as the decision schema's Arrow table (the same table
``Router.route_batch`` returns, so the rest of the pilot is unchanged).

Batched (``batch_size`` <= the service's 1,000), bounded concurrency (``concurrency`` batches in
flight), retries with exponential backoff on connection errors, timeouts, 429 and 5xx; a 4xx or
an answer that is not decisions fails at once. All or nothing: either every valid row comes back
or ``ShadowTargetError`` says what went wrong; nothing partial is returned. ``ts`` is the replayed
query time: the service stamps decisions with *its* clock, so the shadow puts the query's time
back (decision ids depend on run and query id only). Query text goes only to the target, in the
request body; errors name batches, rows and status codes, never text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pyarrow as pa

log = logging.getLogger(__name__)

MAX_BATCH = 1000


class ShadowTargetError(RuntimeError):
    """The target is down, too slow, refuses the requests or answers something else."""


def shadow_decisions(
    target: str,
    texts: Sequence[str],
    query_ids: Sequence[str],
    ts: datetime | Sequence[datetime] | pa.Array | pa.ChunkedArray | None = None,
    run_id: str | None = None,
    *,
    tenants: Sequence[str] | None = None,
    batch_size: int = 500,
    concurrency: int = 4,
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 60.0,
    client=None,
) -> pa.Table:
    """Decisions of ``target`` for ``texts`` (aligned with ``query_ids``) as a schema-1.0.0 table.

    Blank texts are not sent: like ``route_batch``, a ``BatchInputError`` carrying the other rows'
    decisions names them. Raises ``ShadowTargetError`` when the target cannot answer.
    """
    import httpx

    from router.decision import DECISION_ARROW_SCHEMA
    from router.engine import BatchInputError, RowError

    n = len(texts)
    if len(query_ids) != n:
        raise ValueError(f"query_ids has {len(query_ids)} entries for {n} texts")
    if tenants is not None and len(tenants) != n:
        raise ValueError(f"tenants has {len(tenants)} entries for {n} texts")
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    if concurrency < 1 or retries < 0:
        raise ValueError("concurrency must be >= 1 and retries >= 0")
    if not target.startswith(("http://", "https://")):
        raise ShadowTargetError(f"target {target!r} is not an http(s) URL")
    url = target.rstrip("/") + "/v1/simulate"

    ts_list = _ts_list(ts, n)
    errors = [
        RowError(i, str(query_ids[i]), "empty or whitespace-only text")
        for i in range(n)
        if not isinstance(texts[i], str) or not texts[i].strip()
    ]
    bad = {e.index for e in errors}
    keep = [i for i in range(n) if i not in bad]
    batches = [keep[k : k + batch_size] for k in range(0, len(keep), batch_size)]

    own = client is None
    client = client or httpx.Client(timeout=timeout_s)

    def send(rows: list[int]) -> list[dict]:
        body = {
            "queries": [
                {
                    "text": texts[i],
                    "query_id": str(query_ids[i]),
                    **({"tenant": tenants[i]} if tenants is not None and tenants[i] else {}),
                }
                for i in rows
            ]
        }
        if run_id:
            body["run_id"] = run_id
        return _post(client, url, body, rows, [str(query_ids[i]) for i in rows], retries, backoff_s)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(send, batches))
    finally:
        if own:
            client.close()

    rows = [d for batch in answers for d in batch]
    for d, i in zip(rows, keep, strict=True):
        d["ts"] = ts_list[i] if ts_list is not None else _parse_ts(d["ts"])
    try:
        table = pa.Table.from_pylist(rows, schema=DECISION_ARROW_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError) as exc:
        raise ShadowTargetError(
            f"target {target} answered decisions that do not fit the decision schema "
            f"({type(exc).__name__})"
        ) from None
    if errors:
        raise BatchInputError(errors, table)
    return table


def _post(client, url, body, rows, qids, retries, backoff_s) -> list[dict]:
    import httpx

    where = f"batch of rows {rows[0]}..{rows[-1]}"
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            r = client.post(url, json=body)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
            continue
        except httpx.HTTPError as exc:
            last = f"is not reachable ({type(exc).__name__})"
            continue
        if r.status_code in (408, 429) or r.status_code >= 500:
            last = f"answered HTTP {r.status_code}"
            continue
        if r.status_code != 200:
            hint = " (does it speak POST /v1/simulate?)" if r.status_code in (404, 405) else ""
            raise ShadowTargetError(f"{url} answered HTTP {r.status_code} for the {where}{hint}")
        try:
            decisions = r.json()["decisions"]
            got = [d["query_id"] for d in decisions]
        except (ValueError, KeyError, TypeError):
            raise ShadowTargetError(
                f"{url} answered something that is not AMAIMA decisions for the {where}"
            ) from None
        if got != qids:
            raise ShadowTargetError(
                f"{url} answered {len(got)} decisions for the {where} of {len(qids)} queries, "
                "or out of order"
            )
        return decisions
    raise ShadowTargetError(f"{url} {last} for the {where}, after {retries + 1} attempts")


def _ts_list(ts, n: int) -> list[datetime] | None:
    from datetime import UTC

    if ts is None:
        return None
    if isinstance(ts, datetime):
        v = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        return [v] * n
    if isinstance(ts, pa.ChunkedArray | pa.Array):
        ts = ts.cast(pa.timestamp("us", tz="UTC")).to_pylist()
    out = [v if v.tzinfo else v.replace(tzinfo=UTC) for v in ts]
    if len(out) != n:
        raise ValueError(f"ts has {len(out)} entries for {n} texts")
    return out


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
