"""Column types shared by the models."""

from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum


def pg_enum(enum_class: type[StrEnum], type_name: str) -> Enum:
    """A native PostgreSQL enum whose labels are the members' names."""
    return Enum(enum_class, name=type_name, native_enum=True, validate_strings=True)


def one_of(column: str, enum_class: type[StrEnum]) -> CheckConstraint:
    """CHECK that a string column holds one of the enum's values (or NULL)."""
    allowed = ", ".join(f"'{member.value}'" for member in enum_class)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)
