"""Built-in recurrent cells, one module each: ``model.cell=<module name>`` picks ``rnnexp.cells.<name>.CELL``.

A cell owns one step; ``rnnexp.models.cell_layer.CellLayer`` owns the loop, stacking, direction, padding and
carried state (the cell contract is in ``rnnexp.models.cell_contract``). Adding a cell is one module here (with
``CELL = TheClass``) and one YAML in ``conf/model/``: nothing lists them centrally.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path


def builtin_names() -> list[str]:
    """The built-in cell names (this package's modules), found without importing any of them."""
    return sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]))
