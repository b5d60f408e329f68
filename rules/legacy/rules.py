"""A rulechecker-era rule module: trigger the full-field mosaic once a day's GeoTIFFs are in.

Written the way TERRA-REF wrote rules for the original rulechecker (plain functions named in
`rule_extractor_map.json`, progress kept through `rule_utils`), and loaded by Switchboard as
is. Each GeoTIFF dataset adds its target file to the day's progress; the mosaic fires once the
day has at least `min_datasets` targets and they are at least `tolerance_pct` percent of the raw
captures found in that day's raw-data directory. The one addition over the original is
`rule_utils.mark_fired`, so a day fires once even when later events re-check it.
"""

import json
import logging
import os

import rule_utils

# TERRA-REF's shared filesystem as Clowder saw it; connector.mounted_paths maps it locally.
SITES = "/home/clowder/sites"
RAW_DATA = SITES + "/ua-mac/raw_data"
FULLFIELD = SITES + "/ua-mac/Level_1/fullfield"

# dataset sensor name -> (suffix of the file to stitch, raw sensor folder holding date folders)
STITCHABLE = {
    "RGB GeoTIFFs": ("_left.tif", "stereoTop"),
    "Thermal IR GeoTIFFs": ("_ir.tif", "flirIrCamera"),
    "Laser Scanner 3D Heightmap GeoTIFFs": ("_west.tif", "scanner3DTop"),
}

# The thresholds of the last tuning (2017-09-27); a map entry may override them.
TOLERANCE_PCT = 100
MIN_DATASETS = 200

RULE_NAME = "fullFieldMosaicStitcher"
log = logging.getLogger(__name__)


def _no(rulemap):
    return {name: {"process": False, "parameters": {}} for name in rulemap["extractors"]}


def _local(path, connector):
    """The path as this host sees it, through pyclowder's mounted_paths."""
    for source, mounted in (connector.mounted_paths or {}).items():
        if path.startswith(source):
            return mounted + path[len(source) :]
    return path


def _raw_count(connector, raw_sensor, date):
    directory = _local(os.path.join(RAW_DATA, raw_sensor, date), connector)
    count = len(os.listdir(directory)) if os.path.isdir(directory) else 0
    if count == 0:
        raise RuntimeError("problem communicating with file system: no raw data in " + directory)
    return count


def fullFieldMosaicStitcher(extractor, connector, host, secret_key, resource, rulemap):
    """Send a day's GeoTIFFs to the field mosaic once (nearly) all of them are in."""
    tolerance_pct = rulemap.get("tolerance_pct", TOLERANCE_PCT)
    min_datasets = rulemap.get("min_datasets", MIN_DATASETS)

    dsname = resource["dataset_info"]["name"] or ""
    sensor, _, timestamp = dsname.partition(" - ")
    if sensor not in STITCHABLE or not timestamp:
        return _no(rulemap)
    date = timestamp.split("__")[0]
    target_suffix, raw_sensor = STITCHABLE[sensor]
    progress_key = "Full Field -- " + sensor + " - " + date

    # Is there a target GeoTIFF in this dataset at all?
    target = None
    for f in resource["files"]:
        if f["filename"].endswith(target_suffix):
            target = f
    if target is None:
        return _no(rulemap)

    # Record it for every extractor this rule feeds, unless an earlier event already did.
    ids = dict(rule_utils.retrieveProgressFromDB(progress_key).get("ids", {}))
    if target["id"] not in ids:
        for trig_extractor in rulemap["extractors"]:
            rule_utils.submitProgressToDB(
                RULE_NAME, trig_extractor, progress_key, target["id"], target["filepath"]
            )
    else:
        log.debug("previously logged target from %s", dsname)

    # Count again after recording: another daemon may have added targets meanwhile.
    count = rule_utils.count(progress_key)
    if count < min_datasets:
        return _no(rulemap)
    raw_count = _raw_count(connector, raw_sensor, date)
    progress_pct = count * 100.0 / raw_count
    if progress_pct < tolerance_pct:
        log.info("found %d/%d necessary GeoTIFFs (%.2f%%)", count, raw_count, progress_pct)
        return _no(rulemap)
    generation = rule_utils.generation(RULE_NAME, progress_key)
    if not rule_utils.mark_fired(RULE_NAME, progress_key, generation):
        return _no(rulemap)  # this day already went to the mosaic
    ids = rule_utils.retrieveProgressFromDB(progress_key)["ids"]

    # The mosaic reads its inputs by reference: the sorted paths, written beside its output.
    output_dir = _local(os.path.join(FULLFIELD, date), connector)
    os.makedirs(output_dir, exist_ok=True)
    file_paths = os.path.join(output_dir, sensor.replace(" ", "_") + "_file_paths.json")
    with open(file_paths, "w") as out:
        json.dump(sorted(str(p) for p in ids.values()), out)
    results = {}
    for trig_extractor in rulemap["extractors"]:
        results[trig_extractor] = {
            "process": True,
            "parameters": {"output_dataset": "Full Field - " + date, "file_paths": file_paths},
        }
    return results
