"""Provenance: rule-set versions, the event archive, explaining the past, backfill and W3C PROV.

The package's modules are imported where they are used; importing the package loads nothing.
"""
