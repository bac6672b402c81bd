"""Impala-style command-line flags (gflags): ``--name=value``, ``--flagfile=path``.

Impala's daemons take flags the way Google's gflags library parses them, so
operators can reuse their flagfiles:

- ``--name=value`` or ``--name value``; a single leading dash works too;
- booleans: ``--name``, ``--noname``, ``--name=true|false|1|0``;
- ``--flagfile=path``: one flag per line, ``#`` comments, read in place
  (later flags override earlier ones, as in gflags);
- an unknown flag is an error naming it.

Each daemon declares its flags once in a :class:`FlagSet` and gets back an
immutable mapping of typed values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

FlagValue = bool | int | float | str


class FlagError(ValueError):
    """A flag is unknown, malformed or has a value of the wrong type."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One declared flag: its name, default (which fixes its type) and help text."""

    name: str
    default: FlagValue
    help: str

    def convert(self, text: str) -> FlagValue:
        """Turn the text given on the command line into this flag's type."""
        if isinstance(self.default, bool):
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "y", "t"):
                return True
            if lowered in ("0", "false", "no", "n", "f"):
                return False
            raise FlagError(f"illegal value '{text}' specified for bool flag '{self.name}'")
        if isinstance(self.default, int):
            try:
                return int(text, 0) if text.strip().lower().startswith("0x") else int(text)
            except ValueError:
                raise FlagError(
                    f"illegal value '{text}' specified for int flag '{self.name}'"
                ) from None
        if isinstance(self.default, float):
            try:
                return float(text)
            except ValueError:
                raise FlagError(
                    f"illegal value '{text}' specified for double flag '{self.name}'"
                ) from None
        return text


class Flags(Mapping[str, FlagValue]):
    """The parsed, read-only flag values, also readable as attributes."""

    def __init__(self, values: Mapping[str, FlagValue], positional: Sequence[str]) -> None:
        self._values = MappingProxyType(dict(values))
        self.positional: tuple[str, ...] = tuple(positional)

    def __getitem__(self, key: str) -> FlagValue:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get_str(self, name: str) -> str:
        value = self._values[name]
        assert isinstance(value, str), name
        return value

    def get_int(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int) and not isinstance(value, bool), name
        return value

    def get_bool(self, name: str) -> bool:
        value = self._values[name]
        assert isinstance(value, bool), name
        return value

    def get_float(self, name: str) -> float:
        value = self._values[name]
        assert isinstance(value, int | float) and not isinstance(value, bool), name
        return float(value)


class FlagSet:
    """The flags one daemon accepts."""

    def __init__(self, program: str) -> None:
        self.program = program
        self._flags: dict[str, Flag] = {}

    def define(self, name: str, default: FlagValue, help: str) -> None:
        if name in self._flags:
            raise ValueError(f"flag {name} defined twice")
        self._flags[name] = Flag(name, default, help)

    def flags(self) -> Iterable[Flag]:
        return self._flags.values()

    def usage(self) -> str:
        lines = [f"usage: {self.program} [--flag=value ...] [--flagfile=FILE]", ""]
        for flag in sorted(self._flags.values(), key=lambda f: f.name):
            default = str(flag.default).lower() if isinstance(flag.default, bool) else flag.default
            lines.append(f"  --{flag.name}  {flag.help} (default: {default!r})")
        return "\n".join(lines)

    def parse(self, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Flags:
        """Parse ``argv`` (without the program name) into typed values.

        Raises :class:`FlagError` on the first bad flag, naming it.
        """
        values: dict[str, FlagValue] = {f.name: f.default for f in self._flags.values()}
        positional: list[str] = []
        self._parse_into(list(argv), values, positional, depth=0)
        return Flags(values, positional)

    def _parse_into(
        self, args: list[str], values: dict[str, FlagValue], positional: list[str], depth: int
    ) -> None:
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                positional.extend(args[i:])
                return
            if not arg.startswith("-") or arg == "-":
                positional.append(arg)
                continue
            body = arg.lstrip("-")
            name, has_value, text = body.partition("=")
            name = name.replace("-", "_") if name.replace("-", "_") in self._known() else name
            if name == "flagfile":
                if not has_value:
                    if i >= len(args):
                        raise FlagError("flag 'flagfile' is missing its argument")
                    text = args[i]
                    i += 1
                self._read_flagfile(text, values, positional, depth)
                continue
            flag = self._flags.get(name)
            if flag is None and not has_value and name.startswith("no"):
                negated = self._flags.get(name[2:])
                if negated is not None and isinstance(negated.default, bool):
                    values[negated.name] = False
                    continue
            if flag is None:
                raise FlagError(f"unknown command line flag '{name}'")
            if not has_value:
                if isinstance(flag.default, bool):
                    values[name] = True
                    continue
                if i >= len(args):
                    raise FlagError(f"flag '{name}' is missing its argument")
                text = args[i]
                i += 1
            values[name] = flag.convert(text)

    def _known(self) -> set[str]:
        return set(self._flags) | {"flagfile"}

    def _read_flagfile(
        self, path: str, values: dict[str, FlagValue], positional: list[str], depth: int
    ) -> None:
        if depth > 8:
            raise FlagError(f"flagfile '{path}' nests too deeply")
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise FlagError(f"cannot read flagfile '{path}': {e.strerror}") from None
        args = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        self._parse_into(args, values, positional, depth + 1)
