"""Runs ``train.py``'s entry point once per case in this one process, as ``python train.py <case>`` would,
each with its own stdout/stderr file: many refused command lines cost one interpreter start-up.

Usage: ``python -m tests.cli_cases <out dir> <cases.json>``; writes ``<i>.out`` (file descriptors 1 and 2,
like a terminal) and ``codes.json`` (each case's exit status). An exception that escapes is printed as the
interpreter prints it, with status 1."""

import json
import os
import runpy
import subprocess
import sys
import traceback
from pathlib import Path

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def refusal_problems(
    table: list[tuple[list[str] | dict, str]], cases: list, out_dir: Path, timeout: float = 600
) -> list[str]:
    """Run ``cases`` (the command lines built from ``table``'s arguments) in one interpreter and say which
    were not refused as users must see it: exit non-zero, no traceback, the last line naming
    ``table[i][1]``, and nothing trained first (a message that names train/loss is not training output)."""
    cases_file = out_dir / "cases.json"
    cases_file.write_text(json.dumps(cases))
    root = TRAIN_PY.parent
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-m", "tests.cli_cases", str(out_dir), str(cases_file)], cwd=root,
                   env=env, check=True, timeout=timeout)  # fmt: skip
    codes = json.loads((out_dir / "codes.json").read_text())
    problems = []
    for i, ((args, names), code) in enumerate(zip(table, codes, strict=True)):
        output = (out_dir / f"{i}.out").read_text()
        if code == 0 or "Traceback" in output or names not in last_line(output):
            problems.append(f"{args}: exit {code}, last line: {last_line(output)!r}")
        elif "train/loss" in output.replace(last_line(output), "") or "Epoch 0" in output:
            problems.append(f"{args}: refused only after training started")
    return problems


def run_case(args: list[str] | dict, output: Path) -> int:
    """``args``: train.py's arguments, or ``{"module": "rnnexp.generate", "args": [...]}`` for another entry
    point run as ``python -m <module>``."""
    module = args.get("module") if isinstance(args, dict) else None
    args = args["args"] if isinstance(args, dict) else args
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with output.open("wb") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        sys.argv = [module or str(TRAIN_PY), *args]
        try:
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)  # `python -m <module>`
            else:
                runpy.run_path(str(TRAIN_PY), run_name="__main__")  # what `python train.py` executes
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # printed as the interpreter would
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    return code


def main() -> None:
    out_dir, cases_file = Path(sys.argv[1]), Path(sys.argv[2])
    cases = json.loads(cases_file.read_text())
    codes = [run_case(args, out_dir / f"{i}.out") for i, args in enumerate(cases)]
    (out_dir / "codes.json").write_text(json.dumps(codes))


if __name__ == "__main__":
    main()
