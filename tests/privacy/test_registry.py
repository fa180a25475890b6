"""The privacy registry covers every table, and what it says matches the code."""

from __future__ import annotations

from sqlalchemy import Table

import siyu.models  # noqa: F401  (every domain's tables)
from siyu.config import Settings
from siyu.customers.identity import _customer_references
from siyu.db import Base
from siyu.privacy import erasure, registry


def _customer_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns
            if any(fk.column.table.name == "customers" for fk in c.foreign_keys)]


def _suggestion(table: Table) -> str:
    link = tuple(_customer_columns(table))
    if link:
        return f"declare({table.name!r}, link={link!r})"
    for column in table.columns:
        for fk in column.foreign_keys:
            parent = fk.column.table.name
            if parent in registry.REGISTRY and registry.REGISTRY[parent].holds_personal_data:
                return f"declare({table.name!r}, via=({column.name!r}, {parent!r}))"
    return (f"declare({table.name!r}, holds_personal_data=False)   # or link=/via= if its "
            "rows name a customer")


def test_every_table_is_declared() -> None:
    missing = [t for t in Base.metadata.sorted_tables if t.name not in registry.REGISTRY]
    assert not missing, (
        "tables missing from the privacy registry: say how each holds customer data, in "
        "siyu/privacy/registry.py (see its docstring), e.g.\n    "
        + "\n    ".join(_suggestion(t) for t in missing))


def test_no_declaration_for_a_table_that_does_not_exist() -> None:
    stale = sorted(set(registry.REGISTRY) - set(Base.metadata.tables))
    assert not stale, f"siyu/privacy/registry.py declares tables that do not exist: {stale}"


def test_links_are_the_columns_that_reference_customers() -> None:
    for holding in registry.holdings():
        table = Base.metadata.tables[holding.table]
        expected = set(_customer_columns(table)) | ({"id"} if table.name == "customers" else set())
        if table.name == "customers":
            expected.discard("merged_into_id")
        assert set(holding.link) == expected, (
            f"{holding.table}: link={tuple(sorted(expected))!r} (its columns referencing "
            f"customers.id), not {holding.link!r}")


def test_via_parents_are_declared_with_the_person() -> None:
    for holding in registry.holdings():
        if holding.via is None:
            continue
        column, parent = holding.via
        table = Base.metadata.tables[holding.table]
        assert column in table.c, f"{holding.table}: no column {column!r}"
        assert parent in registry.REGISTRY, f"{holding.table}: parent {parent!r} undeclared"
        assert registry.REGISTRY[parent].holds_personal_data
        assert len(Base.metadata.tables[parent].primary_key.columns) == 1


def test_merge_declarations_match_what_a_merge_moves() -> None:
    moved = {table.name for table, _ in _customer_references()}
    declared = {h.table for h in registry.holdings() if h.merge == "move"}
    assert moved == declared, (
        f"merge_customers moves {sorted(moved - declared)} though the registry does not say "
        f"merge='move'; the registry says 'move' for {sorted(declared - moved)} which a merge "
        "leaves in place")


def test_erasure_handlers_and_retention_settings_exist() -> None:
    fields = Settings.model_fields
    for holding in registry.holdings():
        if holding.erase == "anonymise":
            assert holding.table in erasure.ANONYMISERS, holding.table
        if holding.erase == "custom":
            assert holding.table in erasure.CUSTOM_ERASERS, holding.table
        if holding.holds_personal_data and holding.erase == "delete":
            assert holding.link or holding.via, holding.table
        if holding.retention is not None:
            setting, column = holding.retention
            assert setting in fields, f"{holding.table}: no setting {setting}"
            assert column in Base.metadata.tables[holding.table].c
        if holding.purged_with is not None:
            column, parent = holding.purged_with
            assert column in Base.metadata.tables[holding.table].c, holding.table
            assert registry.REGISTRY[parent].retention is not None, holding.table
