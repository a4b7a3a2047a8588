"""Read the inventory from three CSV files: nodes.csv, devices.csv and customers.csv.

Each row is validated by the same models as the JSON document (`NodeIn`, `DeviceIn`,
`CustomerIn`), so the rules live in one place; errors name the file, the row (the header is
row 1) and the column, e.g. `customers.csv:row 7:phone`, and every one is reported at once.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import field_path
from app.exceptions import InvalidInputError
from app.inventory.schemas import CustomerIn, DeviceIn, InventoryIn, InventorySummary, NodeIn
from app.inventory.service import check_references, replace_inventory

NODES, DEVICES, CUSTOMERS = "nodes.csv", "devices.csv", "customers.csv"
CSV_FILES = (NODES, DEVICES, CUSTOMERS)
# List cells hold several values separated by `;` (or `|`, which no identifier contains).
LIST_SEPARATOR = re.compile(r"[;|]")
# The path `check_references` gives a problem: `customers[3].devices[0]`, or just `nodes`.
_REFERENCE = re.compile(r"^(nodes|devices|customers)(?:\[(\d+)\]\.?(.*))?$")

Model = TypeVar("Model", bound=BaseModel)
Errors = list[dict[str, str]]


def _where(file: str, row: int | None = None, column: str = "") -> str:
    """Name a place in the CSV files: `customers.csv:row 7:phone`."""
    parts = [file]
    if row is not None:
        parts.append(f"row {row}")
    if column:
        parts.append(column)
    return ":".join(parts)


def _header(file: str, model: type[BaseModel], cells: list[str], errors: Errors) -> list[str]:
    """Return the column names; record every unknown, repeated or missing required column."""
    columns = [cell.strip().lower() for cell in cells]
    known = model.model_fields
    for position, column in enumerate(columns):
        if column not in known:
            expected = ", ".join(known)
            errors.append(
                {
                    "field": _where(file, 1, column or f"column {position + 1}"),
                    "reason": f"unknown column; expected one of {expected}",
                }
            )
        elif columns.index(column) != position:
            errors.append({"field": _where(file, 1, column), "reason": "column appears twice"})
    for name, info in known.items():
        if info.is_required() and name not in columns:
            errors.append({"field": _where(file, 1, name), "reason": "required column is missing"})
    return columns


def _cell_value(model: type[BaseModel], column: str, cell: str) -> Any:
    """Turn one non-empty cell into what the model takes for `column`."""
    if column == "names":
        names: dict[str, str] = {}
        for part in LIST_SEPARATOR.split(cell):
            language, separator, text = part.partition("=")
            if not separator:
                raise ValueError("write names as language=name;…, e.g. en=Riverside;de=Flussufer")
            names[language.strip()] = text.strip()
        return names
    if column == "quiet_hours":
        start, separator, end = cell.partition("-")
        if not separator:
            raise ValueError("write quiet hours as start-end, e.g. 22:00-07:00")
        return {"start": start.strip(), "end": end.strip()}
    if get_origin(model.model_fields[column].annotation) is list:
        return [part.strip() for part in LIST_SEPARATOR.split(cell) if part.strip()]
    return cell


def _row(
    file: str, model: type[Model], columns: list[str], number: int, cells: list[str], errors: Errors
) -> Model | None:
    """Validate one row; record its errors and return None when it is invalid."""
    if len(cells) > len(columns):
        errors.append(
            {
                "field": _where(file, number),
                "reason": f"{len(cells)} cells, but the header has {len(columns)} columns",
            }
        )
        return None
    data: dict[str, Any] = {}
    count = len(errors)
    for column, cell in zip(columns, cells, strict=False):
        if cell.strip():
            try:
                data[column] = _cell_value(model, column, cell.strip())
            except ValueError as exc:
                errors.append({"field": _where(file, number, column), "reason": str(exc)})
    try:
        row = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            column = field_path(error["loc"]) if error["loc"] else ""
            reason = error["msg"].removeprefix("Value error, ")
            errors.append({"field": _where(file, number, column), "reason": reason})
        return None
    return row if len(errors) == count else None


def _parse_file(
    file: str, model: type[Model], files: dict[str, bytes], errors: Errors
) -> tuple[list[Model], list[int]]:
    """Return the file's valid rows and their row numbers; record every problem in `errors`."""
    rows: list[Model] = []
    numbers: list[int] = []
    if file not in files:
        return rows, numbers
    try:
        text = files[file].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        errors.append({"field": file, "reason": f"not UTF-8 text: {exc}"})
        return rows, numbers
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[str] | None = None
    number = 0
    try:
        for number, cells in enumerate(reader, start=1):
            if columns is None:
                count = len(errors)
                columns = _header(file, model, cells, errors)
                if len(errors) > count:
                    return rows, numbers
            elif any(cell.strip() for cell in cells):
                row = _row(file, model, columns, number, cells, errors)
                if row is not None:
                    rows.append(row)
                    numbers.append(number)
    except csv.Error as exc:
        errors.append({"field": _where(file, number + 1), "reason": f"not CSV: {exc}"})
    return rows, numbers


def _reference_field(field: str, numbers: dict[str, list[int]]) -> str:
    """Re-point a `check_references` path such as `customers[3].devices[0]` at its CSV row."""
    match = _REFERENCE.match(field)
    if match is None:
        return field
    kind, index, rest = match.groups()
    file = f"{kind}.csv"
    if index is None:
        return _where(file, None, "id")
    return _where(file, numbers[kind][int(index)], rest)


def parse_inventory_csv(files: dict[str, bytes]) -> InventoryIn:
    """Build the inventory from CSV documents keyed by file name; nodes.csv is required.

    Raise `InvalidInputError` listing every bad file, row and field; when all rows are sound,
    every broken reference (parents, device nodes, customer devices, duplicate ids).
    """
    errors: Errors = []
    for name in files:
        if name not in CSV_FILES:
            errors.append(
                {"field": name, "reason": f"unknown file; expected {', '.join(CSV_FILES)}"}
            )
    if NODES not in files:
        errors.append({"field": NODES, "reason": "missing; the topology is required"})
    nodes, node_rows = _parse_file(NODES, NodeIn, files, errors)
    devices, device_rows = _parse_file(DEVICES, DeviceIn, files, errors)
    customers, customer_rows = _parse_file(CUSTOMERS, CustomerIn, files, errors)
    if errors:
        raise InvalidInputError(errors)
    try:
        doc = InventoryIn(nodes=nodes, devices=devices, customers=customers)
    except ValidationError as exc:
        raise InvalidInputError(
            [{"field": f"{e['loc'][0]}.csv", "reason": e["msg"]} for e in exc.errors()]
        ) from None
    numbers = {"nodes": node_rows, "devices": device_rows, "customers": customer_rows}
    references = check_references(doc)
    if references:
        raise InvalidInputError(
            [{**e, "field": _reference_field(e["field"], numbers)} for e in references]
        )
    return doc


def read_inventory_dir(path: Path) -> dict[str, bytes]:
    """Read whichever of nodes.csv, devices.csv and customers.csv the folder holds."""
    return {name: (path / name).read_bytes() for name in CSV_FILES if (path / name).is_file()}


async def import_inventory_dir(*, session: AsyncSession, path: Path) -> InventorySummary:
    """Replace the inventory with the CSV files in the folder `path` (`inventory import`)."""
    files = await asyncio.to_thread(read_inventory_dir, path)
    return await replace_inventory(session=session, doc=parse_inventory_csv(files))
