"""Reports: Jinja2 templates over data, Plotly figures, one builder per report, the site index.

- ``reports.render``  — the Jinja2 environment, formatting filters, atomic ``render_to``.
- ``reports.assets``  — the site's single offline ``assets/plotly.min.js`` and figure HTML.
- ``reports.figures`` — pure Plotly figure builders (data in, ``go.Figure`` out).
- ``reports.pilot``   — evidence.json -> ``<root>/<run_id>/report.html`` + ``report.md``.
- ``reports.site``    — ``<root>/index.html`` listing pilot and drill runs.

Nothing is imported here, so importing one module never pulls in Plotly or pydantic.
"""
