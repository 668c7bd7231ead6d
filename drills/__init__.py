"""Incident fire drills: faults injected on a virtual clock into the real router, execution plane
and telemetry store; guarantees checked; a journal written for the postmortem.

- ``drills.scenario``  — the YAML schema; validates once, names file, field and valid values.
- ``drills.clock``     — virtual time and durations ('30s', '5m', '1h').
- ``drills.faults``    — injectors at the upstream, store and config boundaries; rollbacks.
- ``drills.probes``    — steady-state probes and guarantee checks (registries).
- ``drills.traffic``   — seeded query arrivals; texts stay in memory.
- ``drills.runner``    — ``run_scenario(...) -> DrillResult``.
- ``drills.journal``   — the journal dataclasses and their atomic JSON file.
"""
