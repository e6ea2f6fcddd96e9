"""Bad series files and values, each refused in one paragraph that names it (rows for row problems), as the
table of tests/test_checked_values.py checks the other formats."""

from __future__ import annotations

from pathlib import Path

from tests.cli_cases import refusal_problems
from tests.test_checked_values import QUIET
from tests.test_series import series_frame, write_series
from tests.test_series_classification import toy_series, write_ts


def series_file_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    """``(overrides, what the last line must name)`` for datamodule=series / series_forecast /
    series_classification."""
    folder = tmp_path / "series"
    folder.mkdir()
    good = write_series(folder / "good.csv")
    holes = series_frame()
    holes.loc[[3, 17], "load"] = float("nan")
    unsorted = series_frame()
    unsorted.loc[[5, 6]] = unsorted.loc[[6, 5]].to_numpy()
    twice = series_frame()
    twice.loc[9, "time"] = twice.loc[8, "time"]
    bad_time = series_frame()
    bad_time.loc[4, "time"] = "not a date"
    garbage = folder / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    paths = {name: write_series(folder / f"{name}.csv", frame) for name, frame in
             (("holes", holes), ("unsorted", unsorted), ("twice", twice), ("bad_time", bad_time))}  # fmt: skip
    series = ["datamodule=series", "datamodule.target=load", "datamodule.features=[temp]", "datamodule.time=time",
              "datamodule.series_id=station", "datamodule.seq_len=12", "model.hidden_size=8"]  # fmt: skip
    forecast = ["datamodule=series_forecast", f"datamodule.path={good}", "datamodule.target=load",
                "datamodule.series_id=station", "model.hidden_size=8"]  # fmt: skip

    train_ts = write_ts(folder / "toy_TRAIN.ts", *toy_series(30, 0))
    test_series, test_labels = toy_series(9, 1)
    test_labels[4] = "sideways"
    unknown_ts = write_ts(folder / "unknown_TEST.ts", test_series, test_labels)
    broken_ts = folder / "broken.ts"
    broken_ts.write_text("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1,2:zz:q:b\n")
    gap_series, gap_labels = toy_series(12, 2)
    gap_series[7][1, 2] = float("nan")
    gap_ts = write_ts(folder / "gap.ts", gap_series, gap_labels)
    classify = ["datamodule=series_classification", "model.hidden_size=8"]
    return [
        (
            [*series, f"datamodule.path={good}", "datamodule.target=lod"],
            f"{good} has no column 'lod'; its columns are 'station', 'time', 'load', 'temp'",
        ),
        ([*series, f"datamodule.path={good}", "datamodule.features=[station]"], "column 'station'"),
        (
            [*series, f"datamodule.path={paths['holes']}"],
            "missing values (e.g. in column 'load') in data rows 3, 17",
        ),
        ([*series, f"datamodule.path={paths['unsorted']}"], "goes backwards at data rows 6"),
        ([*series, f"datamodule.path={paths['twice']}"], "more than once within a series at data rows 9"),
        ([*series, f"datamodule.path={paths['bad_time']}"], "unparseable time values in data rows 4"),
        ([*series, f"datamodule.path={folder / 'nowhere.csv'}"], str(folder / "nowhere.csv")),
        ([*series, f"datamodule.path={garbage}"], str(garbage)),
        ([*series, f"datamodule.path={good}", "datamodule.missing=zero"], "datamodule.missing='zero'"),
        ([*series, f"datamodule.path={good}", "datamodule.seq_len=200"], "series 'north'"),
        ([*series, f"datamodule.path={good}", "datamodule.features=[]"], "datamodule.features is empty"),
        ([*forecast, "datamodule.features=[temp]"], "datamodule.features=['temp']"),
        ([*forecast, "datamodule.season=30"], "datamodule.season=30"),
        ([*series, f"datamodule.path={good}", "datamodule.relative=true"], "datamodule.relative=true"),
        (
            [*classify, f"datamodule.path={train_ts}", f"datamodule.test_path={unknown_ts}"],
            "labels ['sideways']",
        ),
        ([*classify, f"datamodule.path={broken_ts}"], str(broken_ts)),
        ([*classify, f"datamodule.path={gap_ts}"], f"{gap_ts}: series 7"),
        (
            [*classify, f"datamodule.path={train_ts}", "datamodule.normalize=global"],
            "datamodule.normalize='global'",
        ),
    ]


def test_every_bad_series_file_or_value_exits_with_one_paragraph_naming_it(tmp_path):
    """The table above, run as `python train.py <case>` (many per interpreter, tests/cli_cases.py), checked
    as tests/test_checked_values.py checks its own table (its own subprocess: its own time limit)."""
    table = series_file_cases(tmp_path)
    cases = [[*args, *QUIET, f"hydra.run.dir={tmp_path / f'run{i}'}"] for i, (args, _) in enumerate(table)]
    problems = refusal_problems(table, cases, tmp_path, timeout=600)
    assert not problems, "\n".join(problems)
