"""Text and CSV renderings of a :class:`pipeline.query.density.DensityTable`."""

from __future__ import annotations

import csv
import io

from pipeline.query.density import DensityTable

__all__ = ["density_csv", "density_text"]


def density_csv(table: DensityTable, comment: str = "") -> str:
    """The table as CSV: ``#`` comment lines, a header, one row per point.

    Log-densities with 6 decimals, densities per km² in 6 significant digits (they span many
    orders of magnitude), coordinates as given (up to 6 decimals).
    """
    buf = io.StringIO()
    for line in comment.splitlines():
        buf.write(f"# {line}\n")
    writer = csv.writer(buf, lineterminator="\n")
    cols = table.columns()
    writer.writerow(list(cols))
    for i in range(len(table.lat)):
        writer.writerow([_cell(name, float(values[i])) for name, values in cols.items()])
    return buf.getvalue()


def _cell(name: str, value: float) -> str:
    if name in ("lat", "lon"):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != 0 else "0"
    if name == "density_per_km2":
        return f"{value:.6g}"
    return f"{value:.6f}"


def density_text(table: DensityTable, title: str = "") -> str:
    """The table for a terminal: one line per point, aligned columns (per-seed values left out)."""
    head = ("lat", "lon", "log p [nats/sr]", "sd (seeds)", "p [1/km²]")
    rows = [
        (
            f"{lat:.4f}",
            f"{lon:.4f}",
            f"{lp:.3f}",
            f"{sd:.3f}",
            f"{p:.4g}",
        )
        for lat, lon, lp, sd, p in zip(
            table.lat,
            table.lon,
            table.log_density,
            table.log_density_sd,
            table.density_per_km2,
            strict=True,
        )
    ]
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(head)]
    lines = [title] if title else []
    lines.append("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    lines.extend("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)
