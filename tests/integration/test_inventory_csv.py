"""The inventory as three CSV files: nodes.csv, devices.csv, customers.csv."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.db import transaction
from app.exceptions import InvalidInputError
from app.inventory.csv_import import import_inventory_dir, parse_inventory_csv, read_inventory_dir
from app.inventory.models import Customer, Device
from app.inventory.schemas import InventorySummary
from app.inventory.service import inventory_summary, parse_inventory
from forewarn.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_DIR = EXAMPLES / "inventory"
CUSTOMER_HEADER = (
    "id,name,phone,email,language,timezone,channels,devices,quiet_hours,opt_outs,priority,"
    "webhook_url\n"
)


def example_files() -> dict[str, bytes]:
    return read_inventory_dir(EXAMPLE_DIR)


def write_dir(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_the_example_csv_folder_is_the_same_inventory_as_the_example_json() -> None:
    from_csv = parse_inventory_csv(example_files())
    from_json = parse_inventory((EXAMPLES / "inventory.json").read_bytes())
    assert from_csv == from_json


async def test_the_example_csv_folder_imports(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        summary = await import_inventory_dir(session=session, path=EXAMPLE_DIR)
    async with transaction(sessions) as session:
        stored = await inventory_summary(session=session)
        customer = await session.get_one(Customer, "c-1")
        device = await session.get_one(Device, "cpe-0001")

    assert summary == stored == InventorySummary(nodes=3, devices=1, customers=1)
    assert (customer.phone, customer.language, customer.timezone) == (
        "+4915112345678",
        "de",
        "Europe/Berlin",
    )
    assert customer.channels == ["sms", "email"]
    assert device.services == ["internet", "tv"]


def test_list_cells_quiet_hours_and_empty_cells_are_read_as_documented() -> None:
    files = example_files()
    files["devices.csv"] = b"id,node,services\ncpe-0001,node-17, internet | tv ;voice\n"
    files["customers.csv"] = (
        CUSTOMER_HEADER
        + "c-1,Anna Weber,+49 151 1234-5678,,,,sms,cpe-0001,22:00-07:00,email,yes,\n"
    ).encode()

    doc = parse_inventory_csv(files)

    assert doc.devices[0].services == ["internet", "tv", "voice"]
    customer = doc.customers[0]
    assert customer.phone == "+4915112345678"
    assert (customer.email, customer.language.value, customer.timezone) == (None, "en", "UTC")
    assert customer.quiet_hours is not None
    assert (customer.quiet_hours.start, customer.quiet_hours.end) == ("22:00", "07:00")
    assert [c.value for c in customer.opt_outs] == ["email"] and customer.priority is True


async def test_bad_rows_in_two_files_are_all_reported_with_file_row_and_field(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    folder = write_dir(
        tmp_path / "bad",
        {
            "nodes.csv": "id,level,parent,name\nnorth,region,,\nhub-1,hub,north,\n"
            "node-17,node,hub-1,\nnode-18,street,hub-1,\n",
            "devices.csv": "id,node,services\ncpe-0001,node-17,internet\n",
            "customers.csv": CUSTOMER_HEADER
            + "c-1,Anna Weber,+4915112345678,,de,Europe/Berlin,sms,cpe-0001,,,,\n"
            + "\n"
            + "c-2,Ben,12345,ben@,de,Mars/Olympus,sms;fax,cpe-0001,22:00,,maybe,\n",
        },
    )
    async with transaction(sessions) as session:
        await import_inventory_dir(session=session, path=EXAMPLE_DIR)

    with pytest.raises(InvalidInputError) as caught:
        async with transaction(sessions) as session:
            await import_inventory_dir(session=session, path=folder)
    async with transaction(sessions) as session:
        stored = await inventory_summary(session=session)
        names = list(await session.scalars(select(Customer.name)))

    assert {e["field"] for e in caught.value.errors} == {
        "nodes.csv:row 5:level",
        "customers.csv:row 4:phone",
        "customers.csv:row 4:email",
        "customers.csv:row 4:timezone",
        "customers.csv:row 4:channels[1]",
        "customers.csv:row 4:quiet_hours",
        "customers.csv:row 4:priority",
    }
    assert stored == InventorySummary(nodes=3, devices=1, customers=1)
    assert names == ["Anna Weber"]


def test_broken_references_are_reported_at_their_csv_rows() -> None:
    files = {
        "nodes.csv": b"id,level,parent\nnorth,region,\nhub-1,hub,north\nnode-17,node,hub-9\n",
        "devices.csv": b"id,node,services\ncpe-1,hub-1,tv\ncpe-2,node-17,tv\ncpe-2,node-17,tv\n",
        "customers.csv": b"id,name,phone,channels,devices\n"
        b"c-1,Anna,+4915112345678,sms;email,cpe-9\n",
    }

    with pytest.raises(InvalidInputError) as caught:
        parse_inventory_csv(files)

    assert {e["field"] for e in caught.value.errors} == {
        "devices.csv:id",
        "nodes.csv:row 4:parent",
        "devices.csv:row 2:node",
        "customers.csv:row 2:devices[0]",
        "customers.csv:row 2:channels[1]",
    }


@pytest.mark.parametrize(
    ("files", "fields"),
    [
        ({"devices.csv": b"id,node\n"}, ["nodes.csv"]),
        ({"nodes.csv": b"id,lvl,id\n"}, ["nodes.csv:row 1:lvl", "nodes.csv:row 1:id",
                                         "nodes.csv:row 1:level"]),
        ({"nodes.csv": b"id,level\nnorth,region,extra\n"}, ["nodes.csv:row 2"]),
        ({"nodes.csv": b"id,level\n", "hubs.csv": b""}, ["hubs.csv"]),
        ({"nodes.csv": b"id,level\n\xff\n"}, ["nodes.csv"]),
    ],
    ids=["no-nodes", "bad-header", "too-many-cells", "unknown-file", "not-utf8"],
)  # fmt: skip
def test_a_malformed_csv_set_is_refused_naming_the_place(
    files: dict[str, bytes], fields: list[str]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_inventory_csv(files)
    assert [e["field"] for e in caught.value.errors] == fields


# The CLI, end to end, against a fresh migrated SQLite file.


def run(database: Path, *args: str) -> tuple[int, str]:
    runner = CliRunner(env={"FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    result = runner.invoke(app, ["inventory", "import", *args])
    return result.exit_code, result.output


def stored_customers(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as connection:
        return list(connection.execute("SELECT id, phone FROM customers ORDER BY id"))


def test_the_cli_imports_a_csv_folder_and_still_a_json_file(
    cli_database: Path, tmp_path: Path
) -> None:
    code, output = run(cli_database, str(EXAMPLE_DIR))
    after_csv = stored_customers(cli_database)
    json_code, json_output = run(cli_database, str(EXAMPLES / "inventory.json"))

    assert code == 0, output
    assert "customers=1" in output
    assert after_csv == [("c-1", "+4915112345678")]
    assert json_code == 0, json_output
    assert stored_customers(cli_database) == after_csv


def test_the_cli_prints_every_bad_row_and_exits_1_importing_nothing(
    cli_database: Path, tmp_path: Path
) -> None:
    folder = write_dir(
        tmp_path / "bad",
        {
            "nodes.csv": "id,level,parent\nnorth,region,\nhub-1,hub,north\nnode-17,node,hub-1\n",
            "customers.csv": CUSTOMER_HEADER + "c-1,Anna,+4915112345678,,de,UTC,sms,,,,,\n"
            "c-2,Ben,12345,,de,UTC,sms,,,,,\n",
        },
    )
    (folder / "devices.csv").write_text("id,node,services\ncpe-1,nowhere-+,tv\n")

    code, output = run(cli_database, str(folder))

    assert code == 1
    assert "customers.csv:row 3:phone" in output and "devices.csv:row 2:node" in output
    assert "2 error(s); nothing imported" in output
    assert stored_customers(cli_database) == []
