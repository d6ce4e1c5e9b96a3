"""``station cameras``: the GenTL producers found, their cameras, and each camera's features."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cameras", help="list GenICam cameras and their features",
        description="List the cameras the GenTL producers offer (the .cti files given, those in "
                    "GENICAM_GENTL64_PATH, else the simulated viky camera) and read their standard features.")
    p.add_argument("--cti", action="append", default=[], metavar="PATH",
                   help="a GenTL producer (.cti) or a folder of them; repeatable")
    p.add_argument("--no-features", action="store_true", help="do not open the cameras to read features")
    p.add_argument("--all-features", action="store_true", help="list every feature name the camera offers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.acquisition.base import SourceError
    from station.acquisition.genicam import GenICamSource
    from station.acquisition.gentl import list_devices

    files, devices = list_devices(args.cti)
    report: dict[str, Any] = {"producers": [str(f) for f in files], "cameras": []}
    for d in devices:
        entry: dict[str, Any] = {**d.to_dict(), "uri": f"genicam://{d.serial or d.id}"}
        if not args.no_features:
            source = GenICamSource(d.serial or d.id, cti=files)
            try:
                source.open()
            except SourceError as exc:
                entry["error"] = str(exc)
            else:
                try:
                    entry["features"] = [f.to_dict() for f in source.features()]
                    if args.all_features:
                        entry["feature_names"] = source.feature_names()
                finally:
                    source.close()
        report["cameras"].append(entry)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
        return 0
    print("GenTL producers:")
    for f in report["producers"]:
        print(f"  {f}")
    if not devices:
        print("no cameras found: check power, cable and network settings, or name a producer with --cti")
        return 1
    print(f"{len(devices)} camera(s):")
    for entry in report["cameras"]:
        print(f"\n  {entry['uri']}   {entry['vendor']} {entry['model']}  (serial {entry['serial']}, "
              f"id {entry['id']}, {entry['access']})")
        if "error" in entry:
            print(f"    cannot read features: {entry['error']}")
            continue
        missing = []
        for feat in entry.get("features", []):
            if not feat["present"]:
                missing.append(feat["name"])
                continue
            print(f"    {feat['name']:<28s} {_describe(feat)}")
        if missing:
            print(f"    not available: {', '.join(missing)}")
        if "feature_names" in entry:
            print(f"    all features ({len(entry['feature_names'])}): {', '.join(entry['feature_names'])}")
    return 0


def _describe(feat: dict[str, Any]) -> str:
    if feat["kind"] == "Command":
        return f"(command, {feat['access']})"
    value = feat["value"]
    text = f"{value}{' ' + feat['unit'] if feat['unit'] else ''}  ({feat['access']}"
    if feat["minimum"] is not None and feat["maximum"] is not None:
        text += f", {feat['minimum']:g}..{feat['maximum']:g}"
    if feat["choices"]:
        text += f", one of {', '.join(feat['choices'])}"
    return text + ")"
