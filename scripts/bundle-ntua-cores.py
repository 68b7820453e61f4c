#!/usr/bin/env python3
"""Bundles the per-core PCM files of the NTUA runs as tests/data keeps them: for every
pcm_core_<test>.csv of the runs already bundled, the first 4 intervals and only the
columns dcpilot reads (date, time, and IPC, L3MISS, L2MISS, C0res% of cores 0-5, the
cores of the two Kubernetes nodes), values byte for byte.

    scripts/bundle-ntua-cores.py ../shared/data/ntua_interference/Profiling/Raw_Data
"""
import csv
import pathlib
import sys

ROWS = 4
COUNTERS = ["IPC", "L3MISS", "L2MISS", "C0res%"]
CORES = range(6)


def main(source: str) -> None:
    bundled = pathlib.Path(__file__).resolve().parent.parent / "tests/data/ntua_interference/Raw_Data"
    for run in sorted(p for p in bundled.iterdir() if p.is_dir()):
        for path in sorted((pathlib.Path(source) / run.name).glob("pcm_core_*.csv")):
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            header = [h.strip() for h in rows[0]]
            keep = ["System - Date", "System - Time"] + [
                f"Core{c} (Socket 0) - {k}" for c in CORES for k in COUNTERS
            ]
            if not all(k in header for k in keep):
                print(f"{path}: columns missing, left out", file=sys.stderr)
                continue
            index = [header.index(k) for k in keep]
            with (run / path.name).open("w", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(keep)
                for row in rows[1 : ROWS + 1]:
                    if len(row) >= len(header):
                        writer.writerow([row[i] for i in index])


if __name__ == "__main__":
    main(sys.argv[1])
