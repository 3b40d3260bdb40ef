"""Print bench/results/*.json as the README's Markdown table: `python -m bench.report`."""

from __future__ import annotations

import json

from bench.common import RESULTS


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    cpu, avg, roll, gui = load("cpu_headless"), load("averages"), load("rollover"), load("gui")
    rows = []
    if cpu:
        rows.append(("CPU, `run --headless`, 1 s sampling", f"{cpu['trayapp_percent_of_core']} % of a core",
                     f"notebook loop {cpu['notebook_percent_of_core']} % (×{cpu['ratio_trayapp_over_notebook']})", "≤ 0.1 %"))
    if gui:
        rows.append(("CPU, tray app, window closed, 1 s sampling", f"{gui['gui_percent_of_core']} % of a core",
                     f"headless {gui['headless_percent_of_core']} %", "≤ 0.3 %"))
        if "headless_rss_mb" in gui:
            rows.append(("resident memory, `run --headless`, default settings, after 80 s", f"{gui['headless_rss_mb']} MB", "—", "≤ 45 MB"))
    if avg:
        for days in (2, 365):
            r = avg[f"{days}_days"]
            rows.append((f"36 h averages from disk, {days} days of 2 s history ({r['rows']:,} rows)", f"{r['trayapp_ms']} ms",
                         f"notebook's whole-dataset read {r['notebook_ms']:,} ms (×{r['speedup']})", "≤ 20 ms, flat"))
    if roll:
        rows.append(("rule evaluation per sample", f"{roll['rule_evaluation_us_per_sample']} µs", "—", "≤ 100 µs"))
        for key, label in (("every_2s", "2 s"), ("every_1s", "1 s")):
            r = roll[key]
            rows.append((f"rollover of a full day's CSV, {label} sampling ({r['rows']:,} rows, {r['csv_mb']} MB)", f"{r['trayapp_ms']} ms",
                         f"notebook's csv→parquet {r['notebook_ms']} ms (no merge, no fsync, no dedup)", "—"))
    if gui:
        rows.append(("history window open, 36 h of 1 s data, warm", f"{gui['open_warm_ms']} ms",
                     f"raw samples into pyqtgraph {gui['naive_open_ms']} ms", "≤ 300 ms"))
        rows.append(("history window open, first time (builds the window and its plots; no Arrow)", f"{gui['open_first_ms']} ms", "—", "≤ 300 ms"))
        if "first_paint_first_open_ms" in gui:
            rows.append(("… of which the window built and shown, before its read arrives", f"{gui['first_paint_first_open_ms']} ms", "—", "≤ 300 ms"))
            rows.append(("… first frame on later opens", f"{gui['first_paint_warm_ms']} ms", "—", "≤ 300 ms"))
        rows.append(("resident memory, tray app 3 s after start (36 h of 1 s history seeded)", f"{gui['rss_mb_after_start']} MB", "—", "≤ 150 MB"))
        if "rss_mb_after_preload" in gui:
            rows.append(("resident memory, tray app idle, 80 s after start (pyqtgraph preloaded at 15 s)", f"{gui['gui_rss_mb_after_window_s']} MB", "—", "≤ 150 MB"))
        rows.append(("resident memory after opening/closing the history window 10×", f"{gui['rss_mb_after_10_opens']} MB",
                     f"highest while open {gui.get('rss_mb_window_open_max', '—')} MB (no reader child any more)", "—"))
    print("| what | trayapp | baseline, same run | target |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    year = load("year")
    if year:
        from bench.bench_year import table

        print()
        print("\n".join(table(year)))


if __name__ == "__main__":
    main()
