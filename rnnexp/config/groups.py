"""A typo'd option of a config group (``model=gruu``, ``hydra/sweeper/sampler=tpee``) ends with one line naming
it and the choices. Hydra's own message lists the options but then its config search path, so the command
line is checked first, against the same repository Hydra composes from."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

PREFIXES = ("++", "+", "~")


def group_overrides(args: list[str]) -> list[tuple[str, str, list[str]]]:
    """``(written, group, options)`` for each override that picks options of a group (``a=x`` or a sweep
    ``a=x,y``); keys with dots set values, not options, and flags (``-m``, ``--cfg``) are skipped."""
    picked = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.lstrip("+~").partition("=")
        if (
            "." in key
            or key.startswith("hydra.")
            or not value
            or value.startswith(("[", "{", "choice(", "range("))
        ):
            continue
        picked.append((arg, key, [v.strip() for v in value.split(",")]))
    return picked


def unknown_choice(args: list[str], config_dir: Path) -> str | None:
    """The paragraph for the first override naming an option its group does not have; None if all exist."""
    picked = group_overrides(args)
    if not picked:
        return None
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        for _written, group, values in picked:
            choices = sorted(loader.get_group_options(group))
            if not choices:
                continue  # not a group but a plain key (e.g. seed=1): Hydra checks those
            for value in values:
                if value not in choices and value != "null":
                    GlobalHydra.instance().clear()
                    return (
                        f"{group}={value} is not an option of the config group {group!r}; the choices are "
                        f"{', '.join(choices)}."
                    )
    GlobalHydra.instance().clear()
    return None


def refuse_unknown_choices(args: list[str], config_dir: Path) -> None:
    """Exit with status 1 and one line when ``args`` name an option a group does not have."""
    message = unknown_choice(args, config_dir)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
