"""Turns criterion's estimates (target/criterion/<group>/<bench>/new/estimates.json) into a
markdown table: median time per element and the ratio to the group's baseline_* entry."""
import json
import pathlib
import sys

ELEMENTS = 10_000  # every benchmark iterates over this many positions (benches/geometry.rs)


def load(root):
    rows = {}
    for est in sorted(pathlib.Path(root).glob("**/new/estimates.json")):
        rel = est.parent.parent.relative_to(root)
        parts = rel.parts
        group, name = parts[0], "/".join(parts[1:])
        median_ns = json.loads(est.read_text())["median"]["point_estimate"]
        rows.setdefault(group, []).append((name, median_ns))
    return rows


def main(root, groups):
    rows = load(root)
    out = []
    for g in groups:
        if g not in rows:
            continue
        entries = rows[g]
        per_elem = g != "chunker_build"
        base = next((ns for n, ns in entries if n.startswith("baseline")), None)
        out.append(f"\n### {g}\n")
        out.append("| kernel | median per " + ("row" if per_elem else "call") + " | ratio to baseline |")
        out.append("|---|---:|---:|")
        for name, ns in entries:
            t = ns / ELEMENTS if per_elem else ns
            ratio = f"{ns / base:.2f}x" if base else "-"
            out.append(f"| `{name}` | {t:.1f} ns | {ratio} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
