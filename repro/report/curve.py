"""The report's Table 3 learning curve (`python -m repro.stages.table3_curve` writes the file).

One picture, two panels, both on the validation digits carved from the training split: the
1-NN error at the @50K stand-in's sample count against training epochs (each model; Real Data
and 1.5x Real Data as lines), and the error against the number of samples at each model's
last scored epoch (Real Data against its number of digits). A short table beside it gives the
numbers the panels draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.errors import ReproError
from repro.report.charts import _PNG, _figure
from repro.utils.io import read_json, save_figure

COLOURS = {"mnist_cond": "#2166ac", "gan_mlp": "#b2182b"}
RATIO = 1.5  # issue 29's target: the DCGAN row within 1.5x the real-data row


def read_curve(path: Path) -> dict[str, Any] | None:
    """The curve record, None when absent; one clear error when it lacks what is drawn."""
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not {"real", "models", "n_samples", "config"} <= set(data):
        raise ReproError(f"{path} is not a table3_curve record (real, models, n_samples, config); "
                         "rerun python -m repro.stages.table3_curve")
    return data


def stand_in(curve: dict[str, Any]) -> str:
    """The sample count read as the @50K stand-in (as a key): as many samples as the split
    the digits were carved from holds (the demo's Real Data row: 5,000 digits, its @50K
    column: 5,000 samples; the paper: 50,000 and 50,000), else the largest count."""
    whole = curve["n_train"] + curve["n_valid"]
    fits = [n for n in curve["n_samples"] if n >= whole]
    return str(min(fits) if fits else max(curve["n_samples"]))


def _real_at(curve: dict[str, Any]) -> float:
    return curve["real"][str(curve["n_train"])]


def curve_plot(curve: dict[str, Any], path: Path) -> None:
    n = stand_in(curve)
    real = _real_at(curve)
    fig = _figure(7.0, 2.6)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, model in curve["models"].items():
        epochs = sorted(model["epochs"], key=int)
        colour = COLOURS.get(name)
        ax1.plot([int(e) for e in epochs], [model["epochs"][e]["err"][n] for e in epochs],
                 "o-", color=colour, markersize=3, linewidth=1, label=name)
        last = model["epochs"][epochs[-1]]["err"]
        counts = sorted(last, key=int)
        ax2.plot([int(c) for c in counts], [last[c] for c in counts], "o-", color=colour,
                 markersize=3, linewidth=1, label=f"{name}, epoch {epochs[-1]}")
    for ax in (ax1, ax2):
        ax.axhline(real, color="black", linewidth=1, label=f"Real Data ({curve['n_train']:,})")
        ax.axhline(RATIO * real, color="black", linewidth=1, linestyle="--",
                   label=f"{RATIO}x Real Data")
        ax.set_ylabel("validation 1-NN error (%)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(color="#eeeeee")
    reals = sorted(curve["real"], key=int)
    ax2.plot([int(c) for c in reals], [curve["real"][c] for c in reals], "s:", color="black",
             markersize=3, linewidth=1, label="Real Data, by digits")
    ax2.set_xscale("log")
    ax1.set_yscale("log")  # the GAN's first epochs are far above where the curves end
    ax1.set_yticks([5, 10, 20, 40, 80], labels=["5", "10", "20", "40", "80"])
    ax1.yaxis.set_minor_formatter("")
    ax1.set_xlabel(f"training epochs (at {int(n):,} samples)", fontsize=7)
    ax2.set_xlabel("samples (Real Data: digits) the 1-NN is fitted on", fontsize=7)
    ax1.legend(fontsize=6, frameon=False)
    ax2.legend(fontsize=6, frameon=False)
    save_figure(fig, path, **_PNG)


def curve_markdown(curve: dict[str, Any], image: str) -> str:
    """The report section: what was measured, the picture, the numbers it draws."""
    n = stand_in(curve)
    real = _real_at(curve)
    lines = [
        "## Table 3: learning curve (validation digits)", "",
        f"1-NN error on {curve['n_valid']:,} digits carved from {curve['source']} (seed "
        f"{curve['seed']}; never the test split), models trained on the other "
        f"{curve['n_train']:,} with their `train.<name>` sections of profile `{curve['profile']}` "
        "at the full learning rate (`python -m repro.stages.table3_curve`, "
        f"`results/table3_curve.json`). Real Data: {real:.2f}% with its {curve['n_train']:,} "
        f"digits; {RATIO}x that: {RATIO * real:.2f}%. Wall seconds are those of the machine "
        "that ran it, as loaded as it was (its platform is in the file).", "",
        f"![Table 3 learning curve]({image})", "",
        f"| model | epoch | steps | train wall s | err @{int(n):,} | x Real Data | "
        f"err @{max(curve['n_samples']):,} |",
        "|---|---|---|---|---|---|---|",
    ]
    top = str(max(curve["n_samples"]))
    for name, model in curve["models"].items():
        for e in sorted(model["epochs"], key=int):
            p = model["epochs"][e]
            lines.append(f"| {name} | {e} | {p['step']} | {p['train_seconds']} | "
                         f"{p['err'][n]:.2f}% | {p['err'][n] / real:.2f} | {p['err'][top]:.2f}% |")
    devs = curve.get("deviations") or []
    if devs:
        lines += ["", "Deviations: " + "; ".join(devs) + "."]
    return "\n".join(lines) + "\n"
