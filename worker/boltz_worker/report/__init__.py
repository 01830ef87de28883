"""HTML reports a person opens: one self-contained page per run, written next to the results.

One module per kind of run, each a function from what the run left (output files, metrics tables) to the page's
HTML; page.py assembles the page (tables, plotly figures, the 3Dmol.js viewer, every script inlined so it opens
offline). A screen report (BoltzScreen, once it exists) is one more module here: a function from the rank Job's
ranked table to a Page with a sortable table, an affinity histogram and an affinity-vs-ipTM scatter, built from
the same page helpers as campaign.py.
"""
