"""Python rules for the TERRA-like pipeline: conditions that read more naturally as code."""

from switchboard import DatasetView, Event, rule, submit


@rule(on="dataset.file.added")
def scanner_ply2las(event: Event, dataset: DatasetView):
    """Send a scanner3DTop dataset to ply2las once both the west and the east PLY are in."""
    if not (dataset.name or "").startswith("scanner3DTop - "):
        return None
    if event.file is None or not event.file.name.endswith(".ply"):
        return None
    if dataset.count(suffix="_west.ply") >= 1 and dataset.count(suffix="_east.ply") >= 1:
        return submit("terra.3dscanner.ply2las", resource="dataset")
    return None
