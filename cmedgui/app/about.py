"""Help › About: the version, the bundled networks' model cards and the paper the work rests on."""

from __future__ import annotations

import html
import json
from pathlib import Path

from cmedgui import __version__

WEIGHTS = Path(__file__).resolve().parents[2] / "resources" / "weights"
SEED_PAPER = ("G. Guo et al., “Towards End-to-End Structure Solutions from Information-Compromised Diffraction "
              "Data via Generative Deep Learning”, arXiv:2312.15136 (npj Computational Materials, 2024)")
DEFAULT_NETWORK = "ours"  # the one the solve draws densities from (model.predict.Predictor.load)


def about_html(weights: Path = WEIGHTS) -> str:
    """The About text (Qt rich text): version, one paragraph per model card, the citation."""
    parts = [f"<h3>cmedgui {html.escape(__version__)}</h3>",
             ("<p>Crystal structures from powder X-ray diffraction: indexing, a Wyckoff search, "
             "Rietveld refinement, and the network's electron density (CMED).</p>")]
    cards = sorted(weights.glob("*.card.json"), key=lambda path: path.name != f"{DEFAULT_NETWORK}.card.json")
    for path in cards:
        parts.append(_card(path))
    if not cards:
        parts.append(f"<p>No model cards in {html.escape(str(weights))}: the solve runs without network densities.</p>")
    parts.append(f"<p><b>Please cite</b> the method this work implements and extends:<br>{html.escape(SEED_PAPER)}</p>")
    return "\n".join(parts)


def _card(path: Path) -> str:
    name = path.name.removesuffix(".card.json")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return f"<p><b>{html.escape(name)}</b>: unreadable model card ({html.escape(str(error))})</p>"
    role = " — used by Solve" if name == DEFAULT_NETWORK else ""
    minutes = card.get("train_seconds", 0.0) / 60.0
    lines = [(f"<b>Network “{html.escape(name)}”</b>{role}: kind {html.escape(str(card.get('kind')))}, "
             f"weights sha256 {html.escape(str(card.get('sha256', ''))[:12])}…"),
             (f"trained {card.get('step')} steps ({minutes:.0f} min on {html.escape(str(card.get('device')))}) "
             f"on {html.escape(str(card.get('data')))}; validation SSIM {card.get('val_ssim_mean', float('nan')):.3f}"),
             f"model card: {html.escape(str(path))}"]
    if card.get("note"):
        lines.append(f"<i>{html.escape(card['note'])}</i>")
    return "<p>" + "<br>".join(lines) + "</p>"
