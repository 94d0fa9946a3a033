"""The numbers the papers report, transcribed from them (see ``../shared/SPEC.md``).

These appear in reports *beside* our values and are never written into our
tables. Each function returns a DataFrame in the same long layout as the
matching study's output, so the two can be joined on their key columns.
"""

from __future__ import annotations

import pandas as pd

_PNAS = "PNAS (Liu et al., ECCV 2018)"
_POPNAS = "POPNAS (Ardagna et al.)"
_THESIS = "Kyriakides PhD thesis"


def space_counts() -> pd.DataFrame:
    """PNAS section 3.1: block-structure counts, space size and one-block symmetry."""
    rows = [("|B_b| ordered block structures", b, v) for b, v in
            zip(range(1, 6), (256, 576, 1024, 1600, 2304))]
    rows += [
        ("|B_1:B| cell structures", 5, 5.6e14),
        ("unique one-block cells", 1, 136),
        ("two-block candidates from all one-block structures (ordered)", 2, 147_456),
    ]
    return pd.DataFrame(rows, columns=["quantity", "b", "paper"]).assign(source=_PNAS)


def pnas_table1() -> pd.DataFrame:
    """PNAS Table 1: Spearman rho-hat_b (training set) and rho-tilde_{b+1} (unseen larger cells)."""
    values = {
        "MLP": (0.938, 0.113, 0.857, 0.450, 0.714, 0.469, 0.641, 0.444),
        "RNN": (0.970, 0.198, 0.996, 0.424, 0.693, 0.401, 0.787, 0.413),
        "MLP-ensemble": (0.975, 0.164, 0.786, 0.532, 0.634, 0.504, 0.645, 0.468),
        "RNN-ensemble": (0.972, 0.164, 0.906, 0.418, 0.801, 0.465, 0.579, 0.424),
    }
    rows = []
    for method, series in values.items():
        for b in range(1, 5):
            rows.append((method, b, "train", b, series[2 * (b - 1)]))
            rows.append((method, b, "next", b + 1, series[2 * (b - 1) + 1]))
    frame = pd.DataFrame(rows, columns=["predictor", "fit_blocks", "evaluated_on", "eval_blocks", "paper"])
    return frame.assign(source=_PNAS)


def popnas_table3() -> pd.DataFrame:
    """POPNAS Table 3: average relative error of the four time regressors."""
    values = {
        "block_sum": ((0.1821, 0.2758, 0.2390), (0.1821, 0.2290, 0.2323)),
        "ridge": ((0.3465, 0.0524, 0.0353), (0.3465, 0.1995, 0.1444)),
        "nnls": ((0.3660, 0.0524, 0.0355), (0.3660, 0.2092, 0.1510)),
        "xgboost": ((0.5778, 0.4849, 0.3893), (0.5778, 0.5314, 0.4838)),
    }
    return _regressor_rows(values, "regressor").assign(source=_POPNAS)


def popnas_table4() -> pd.DataFrame:
    """POPNAS Table 4: Ridge and NNLS with static re-index and input pruning."""
    values = {
        ("ridge", "standard"): ((0.3270, 0.0524, 0.0353), (0.3270, 0.1897, 0.1380)),
        ("ridge", "reordered"): ((0.3126, 0.0613, 0.0637), (0.3126, 0.1869, 0.1456)),
        ("ridge", "without_inputs"): ((0.4018, 0.0522, 0.0388), (0.4018, 0.2270, 0.1639)),
        ("ridge", "reordered_without_inputs"): ((0.3028, 0.0470, 0.0709), (0.3028, 0.1749, 0.1401)),
        ("nnls", "standard"): ((0.3483, 0.0524, 0.0355), (0.3483, 0.2003, 0.1451)),
        ("nnls", "reordered"): ((0.2580, 0.0469, 0.0625), (0.2580, 0.1524, 0.1223)),
        ("nnls", "without_inputs"): ((0.3483, 0.0522, 0.0388), (0.3483, 0.2002, 0.1461)),
        ("nnls", "reordered_without_inputs"): ((0.2580, 0.0469, 0.0709), (0.2580, 0.1524, 0.1251)),
    }
    frame = _regressor_rows(values, "key")
    frame[["regressor", "variant"]] = pd.DataFrame(frame.pop("key").tolist(), index=frame.index)
    return frame[["regressor", "variant", "evaluation", "blocks", "paper"]].assign(source=_POPNAS)


def popnas_table5() -> pd.DataFrame:
    """POPNAS Table 5: NNLS average / max / min relative error, static versus dynamic re-index."""
    rows = [
        ("static", "mean", 0.237973999), ("static", "max", 0.60435179), ("static", "min", 0.017062738),
        ("dynamic", "mean", 0.212871771), ("dynamic", "max", 0.348979024), ("dynamic", "min", 0.081329244),
    ]
    return pd.DataFrame(rows, columns=["reindex", "statistic", "paper"]).assign(source=_POPNAS)


def popnas_table7() -> pd.DataFrame:
    """POPNAS Table 7: mean accuracy of the top 1, 5, 25 and 256 trained cells per step."""
    values = {
        1: (0.694, 0.673, 0.685, 0.701, 0.741),
        5: (0.686, 0.659, 0.672, 0.680, 0.723),
        25: (0.662, 0.457, 0.492, 0.635, 0.675),
        256: (0.541, 0.305, 0.380, 0.488, 0.637),
    }
    # the paper's last row is all K = 256 cells of a step; ours is labelled "K" whatever K is
    rows = [("K" if top == 256 else str(top), b, v) for top, series in values.items()
            for b, v in zip(range(1, 6), series)]
    return pd.DataFrame(rows, columns=["top", "blocks", "paper"]).assign(source=_POPNAS)


def popnas_table8() -> pd.DataFrame:
    """POPNAS Table 8 and section 4.2: best cells and search cost, PNAS versus POPNAS."""
    rows = [
        ("best cell accuracy", "pnas", 0.8223), ("best cell accuracy", "popnas", 0.7433),
        ("best cell training time [min]", "pnas", 66.0), ("best cell training time [min]", "popnas", 38.0),
        ("search time at B=2 [min]", "pnas", 2 * 1440 + 60 + 31), ("search time at B=2 [min]", "popnas", 4 * 60 + 29),
        ("search time at B=5 [min]", "pnas", 11 * 1440 + 15 * 60 + 38),
        ("search time at B=5 [min]", "popnas", 5 * 1440 + 23 * 60 + 36),
        ("mean accuracy of trained cells at B=5", "pnas", 0.770),
        ("mean accuracy of trained cells at B=5", "popnas", 0.637),
    ]
    return pd.DataFrame(rows, columns=["quantity", "search", "paper"]).assign(source=_POPNAS)


def thesis_table4_3() -> pd.DataFrame:
    """Thesis Table 4.3: GA on noisy 3-d Rastrigin, mean top fraction (1,000 repetitions)."""
    values = {10: (0.160, 0.162, 0.184, 0.195), 100: (0.050, 0.058, 0.086, 0.103),
              1000: (0.013, 0.022, 0.032, 0.040)}
    taus = (1.0, 0.95, 0.85, 0.75)
    rows = [(3, g, t, v) for g, series in values.items() for t, v in zip(taus, series)]
    return pd.DataFrame(rows, columns=["dims", "generations", "tau", "paper"]).assign(source=_THESIS)


def thesis_table5_4() -> pd.DataFrame:
    """Thesis Table 5.4: GA on noisy 2-, 3-, 4-d Rastrigin, mean top fraction (100 repetitions)."""
    values = {
        (2, 10): (0.131, 0.141, 0.180, 0.196), (2, 100): (0.042, 0.072, 0.085, 0.111),
        (2, 1000): (0.002, 0.032, 0.033, 0.044), (3, 10): (0.161, 0.179, 0.199, 0.217),
        (3, 100): (0.043, 0.076, 0.091, 0.127), (3, 1000): (0.002, 0.030, 0.038, 0.046),
        (4, 10): (0.177, 0.195, 0.220, 0.243), (4, 100): (0.044, 0.084, 0.098, 0.133),
        (4, 1000): (0.002, 0.033, 0.043, 0.048),
    }
    taus = (1.0, 0.85, 0.75, 0.65)
    rows = [(d, g, t, v) for (d, g), series in values.items() for t, v in zip(taus, series)]
    return pd.DataFrame(rows, columns=["dims", "generations", "tau", "paper"]).assign(source=_THESIS)


def thesis_kendall_fidelity() -> pd.DataFrame:
    """Thesis chapter 5: Kendall tau of reduced versus full training (NAS-Bench-101, CIFAR-10)."""
    rows = [
        ("NAS-Bench-101 36 vs 108 epochs", "raw", 0.76, None),
        ("NAS-Bench-101 36 vs 108 epochs", "percent", 0.808, 8.33e-4),
        ("NAS-Bench-101 108 vs 108 epochs (re-run ceiling)", "raw", 0.89, None),
        ("NAS-Bench-101 108 vs 108 epochs (re-run ceiling)", "percent", 0.94, 4.72e-4),
        ("CIFAR-10 global space, SGD 20 vs 50 epochs", "percent", 0.851, 0.028),
    ]
    return pd.DataFrame(rows, columns=["comparison", "rounding", "paper", "paper_std_error"]).assign(
        source=_THESIS
    )


def _regressor_rows(values: dict, key_name: str) -> pd.DataFrame:
    rows = []
    for key, (proper, progressive) in values.items():
        for blocks, value in zip((2, 3, 4), proper):
            rows.append((key, "proper", blocks, value))
        for blocks, value in zip((2, 3, 4), progressive):
            rows.append((key, "progressive", blocks, value))
    return pd.DataFrame(rows, columns=[key_name, "evaluation", "blocks", "paper"])
