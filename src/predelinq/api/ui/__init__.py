"""The dashboard at ``/ui``: the retraining loop for risk analysts, as pages and plots.

``routes`` (the pages and forms), ``views`` (what each page shows, gathered from the library),
``charts`` (Plotly figures as dictionaries), ``auth`` (read sessions and the admin token),
``templates/`` and ``static/``."""
