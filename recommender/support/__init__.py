"""The support console: find a shopper, read their timeline, open any recommendation list they were shown
and see why each item was there (then and now), and per model version which signals matter overall.

    selectors.py   shopper lookup (email, customer id / external id, order number, impression or request
                   id), the timeline, the lists shown, a list's explained trace then and now, global
                   attributions per model version (reads only)
    timeline.py    the timeline-source hook: apps above the recommender (the chatbot) add their entries
    charts.py      server-side SVG: SHAP waterfall, mean |SHAP| bars, a beeswarm-like summary plot
    views.py       thin admin views (mounted at /admin/support/ by recsite/urls.py), urls.py

Access (recsite/roles.py): shopper pages need `recommender.view_explanations` and `catalog.view_customer`
(Support, Analysts, superusers); model pages need `recommender.view_explanations` and
`recommender.view_modelversion` (Merchandisers too).
"""
