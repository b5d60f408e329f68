"""Collections: firing, manifests, the quiet-period sweeper and Python totals.

The `collect:` compiler is `rules.collect`; the SQL behind collections is in `store`.
"""
