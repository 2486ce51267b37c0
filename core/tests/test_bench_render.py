"""bench/run_all.py's table rendering (benchmarks do not run in CI; this keeps their collector importable)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_lines_become_a_table_with_growth_against_the_smallest_size():
    run_all = load("run_all")
    log = "\n".join(
        [
            "=== python bench/curves.py --quick",
            'BENCH_CURVE {"job": "exports", "size": 10000, "seconds": 0.5, "per_item_ms": 0.05, "unit": "row"}',
            "noise",
            'BENCH_CURVE {"job": "exports", "size": 100000, "seconds": 10.0, "per_item_ms": 0.1, "unit": "row"}',
        ]
    )
    curves = run_all.curves_from_log(log)
    assert [c["size"] for c in curves] == [10000, 100000]
    table = run_all.curve_table(curves)
    assert table[2] == "| exports | 10,000 | 0.50 s | 0.0500 ms per row | 1.00 |"
    assert table[3] == "| exports | 100,000 | 10.00 s | 0.1000 ms per row | 2.00 |"


def test_rows_without_a_target_show_a_dash_not_a_failure():
    run_all = load("run_all")
    assert run_all.met_cell(None) == "–"  # bench/api_mixed.py: context rows, issue 18 sets them no target
    assert run_all.met_cell(True) == "yes"
    assert run_all.met_cell(False) == "**no**"


def test_a_rewrite_keeps_the_hand_written_notes_after_the_marker(tmp_path):
    run_all = load("run_all")
    out = tmp_path / "benchmarks.md"
    out.write_text(f"# Benchmarks\n\n| old table |\n\n{run_all.KEEP_MARKER}\n\n## Notes\n\nby hand\n")
    text = run_all.with_kept_notes("# Benchmarks\n\n| new table |\n", out)
    assert "| old table |" not in text and "| new table |" in text
    assert text.endswith(f"{run_all.KEEP_MARKER}\n\n## Notes\n\nby hand\n")
    assert run_all.with_kept_notes("generated", tmp_path / "missing.md") == "generated"
