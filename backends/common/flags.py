"""Impala-style command-line flags (gflags): ``--name=value``, ``--flagfile=path``.

Impala's three daemons are one binary, so every one of them accepts every Impala
flag and operators keep one common flagfile for all of them. impala-lb's daemons
do the same, from one registry of Impala's flags (``impala_flags.tsv``: names,
types and defaults read from Impala 4.5.0's source, plus glog's and gflags' own):

- a flag the daemon implements acts (:meth:`FlagSet.define`);
- any other Impala flag is accepted, type-checked as gflags checks it, and
  recorded in :attr:`Flags.unimplemented` (the daemon names those no impala-lb
  daemon implements in one start-up warning: :mod:`backends.flagsets`);
- a flag Impala does not have is refused, as gflags refuses it, unless it is one
  of impala-lb's own (:data:`EXTENSIONS`, accepted by every daemon too) or named in
  ``--undefok``.

Parsing follows gflags:

- ``--name=value`` or ``--name value``; a single leading dash works too, and
  ``-`` in a name stands for ``_``;
- booleans: ``--name``, ``--noname``, ``--name=true|false|1|0``;
- integers are range-checked for their type (``int32``, ``uint64``, ...);
- ``--flagfile=path``: one flag per line, ``#`` comments, read in place (later
  flags override earlier ones), and a flagfile may name further flagfiles;
- ``--fromenv=a,b`` reads ``FLAGS_a`` and ``FLAGS_b`` from the environment (an
  error if one is missing), ``--tryfromenv`` the same without the error;
- ``--undefok=a,b``: unknown flags ``a`` and ``b`` are ignored, not refused.

Tools that are not Impala daemons (``debug_action``, ``subscriber_cli``) use a
plain :class:`FlagSet` without the registry.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

FlagValue = bool | int | float | str

#: gflags' integer types and their ranges
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
KINDS = ("bool", "double", "string", *_INT_RANGES)
_MAX_FLAGFILE_DEPTH = 8


#: impala-lb's own flags (name: gflags type), not Impala's: where impala-lb's daemons
#: differ from Impala's (listening on one address of many on a host, the embedded
#: metastore, tests' passwords). Every daemon accepts them, as Impala's own.
EXTENSIONS = {
    "listen_host": "string",
    "warehouse_dir": "string",
    "catalog_path": "string",
    "catalog_db_path": "string",
    "catalog_sync_reads": "bool",
    "sync_ddl_timeout_s": "int64",
    "ldap_passwords_file": "string",
}


class FlagError(ValueError):
    """A flag is unknown, malformed or has a value of the wrong type."""


@dataclasses.dataclass(frozen=True)
class ImpalaFlag:
    """One flag of real Impala: its gflags type and default (None: an expression)."""

    name: str
    kind: str
    default: FlagValue | None
    expression: str
    source: str


@functools.cache
def impala_flags() -> Mapping[str, ImpalaFlag]:
    """The registry: every flag real Impala's daemons accept, by name."""
    text = importlib.resources.files("backends.common").joinpath("impala_flags.tsv").read_text()
    table: dict[str, ImpalaFlag] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, kind, default, expression, source = line.split("\t")
        value = None if expression else _typed(kind, default, name)
        table[name] = ImpalaFlag(name, kind, value, expression, source)
    return MappingProxyType(table)


@functools.cache
def known_flags() -> Mapping[str, ImpalaFlag]:
    """What an impala-lb daemon accepts: Impala's flags and :data:`EXTENSIONS`
    (``source`` ``impala-lb``, no default of Impala's)."""
    table = dict(impala_flags())
    for name, kind in EXTENSIONS.items():
        assert name not in table, name
        table[name] = ImpalaFlag(name, kind, None, "", "impala-lb")
    return MappingProxyType(table)


def _kind_of(default: FlagValue) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int64"
    if isinstance(default, float):
        return "double"
    return "string"


def _typed(kind: str, text: str, name: str) -> FlagValue:
    """``text`` as a value of gflags type ``kind``, or FlagError worded as gflags words it."""
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "y", "t"):
            return True
        if lowered in ("0", "false", "no", "n", "f"):
            return False
    elif kind in _INT_RANGES:
        stripped = text.strip()
        try:
            value = int(stripped, 16) if stripped.lower().startswith("0x") else int(stripped)
        except ValueError:
            pass
        else:
            low, high = _INT_RANGES[kind]
            if low <= value <= high:
                return value
    elif kind == "double":
        try:
            return float(text)
        except ValueError:
            pass
    else:
        return text
    raise FlagError(f"illegal value '{text}' specified for {kind} flag '{name}'")


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag a program implements: name, default (in its type), help text and
    gflags type; ``extension``: impala-lb's own (:data:`EXTENSIONS`), not an Impala
    flag; ``differs``: why its default is not Impala's."""

    name: str
    default: FlagValue
    help: str
    kind: str
    extension: bool = False
    differs: str = ""

    def convert(self, text: str) -> FlagValue:
        """Turn the text given on the command line into this flag's type."""
        return _typed(self.kind, text, self.name)


class Flags(Mapping[str, FlagValue]):
    """The parsed, read-only flag values, also readable as attributes.

    ``unimplemented``: the Impala flags given that this program does not implement,
    with their (checked) values, in the order given."""

    def __init__(
        self,
        values: Mapping[str, FlagValue],
        positional: Sequence[str],
        unimplemented: Mapping[str, FlagValue] | None = None,
    ) -> None:
        self._values = MappingProxyType(dict(values))
        self.positional: tuple[str, ...] = tuple(positional)
        self.unimplemented: Mapping[str, FlagValue] = MappingProxyType(dict(unimplemented or {}))

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


@dataclasses.dataclass
class _Parse:
    """What one parse collects: values, positionals, and the flags left to judge."""

    values: dict[str, FlagValue]
    positional: list[str] = dataclasses.field(default_factory=list)
    unimplemented: dict[str, FlagValue] = dataclasses.field(default_factory=dict)
    unknown: list[str] = dataclasses.field(default_factory=list)
    undefok: set[str] = dataclasses.field(default_factory=set)


class FlagSet:
    """The flags one program implements; with ``registry`` (an Impala daemon: see
    :meth:`impala`), also every other flag of that registry, accepted without effect."""

    def __init__(self, program: str, registry: Mapping[str, ImpalaFlag] | None = None) -> None:
        self.program = program
        self.registry: Mapping[str, ImpalaFlag] = registry or {}
        self._flags: dict[str, Flag] = {}

    @classmethod
    def impala(cls, program: str) -> FlagSet:
        """The flag set of an Impala daemon: Impala's whole registry is accepted."""
        return cls(program, known_flags())

    def define(self, name: str, default: FlagValue, help: str, *, differs: str = "") -> None:
        """Implement flag ``name``. For an Impala daemon it must be one of the registry's
        (Impala's, or impala-lb's :data:`EXTENSIONS`), with a default of its type."""
        if name in self._flags:
            raise ValueError(f"flag {name} defined twice")
        kind = _kind_of(default)
        known = self.registry.get(name)
        if self.registry and known is None:
            raise ValueError(f"flag {name} is not Impala's: add it to EXTENSIONS if it is ours")
        extension = known is not None and known.source == "impala-lb"
        if known is not None:
            if _kind_of(_typed(known.kind, str(default).lower(), name)) != kind and not (
                known.kind == "double" and isinstance(default, int | float)
            ):
                raise ValueError(f"flag {name} is {known.kind} in Impala, default {default!r}")
            kind = known.kind
            if kind == "double":
                default = float(default)
        self._flags[name] = Flag(name, default, help, kind, extension, differs)

    def flags(self) -> Iterable[Flag]:
        return self._flags.values()

    def usage(self) -> str:
        lines = [f"usage: {self.program} [--flag=value ...] [--flagfile=FILE]", ""]
        for flag in sorted(self._flags.values(), key=lambda f: f.name):
            default = str(flag.default).lower() if isinstance(flag.default, bool) else flag.default
            lines.append(f"  --{flag.name}  {flag.help} (default: {default!r})")
        if self.registry:
            more = len(self.registry)
            lines += ["", f"  and {more} more of Impala's flags, accepted without effect"]
        return "\n".join(lines)

    def parse(self, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Flags:
        """Parse ``argv`` (without the program name) into typed values.

        Raises :class:`FlagError` on the first bad flag, naming it."""
        state = _Parse({f.name: f.default for f in self._flags.values()})
        env = os.environ if environ is None else environ
        self._parse_into(list(argv), state, env, depth=0)
        unknown = [name for name in state.unknown if name not in state.undefok]
        if unknown:
            raise FlagError(f"unknown command line flag '{unknown[0]}'")
        return Flags(state.values, state.positional, state.unimplemented)

    def _lookup(self, name: str) -> tuple[str, Flag | ImpalaFlag | None]:
        """The flag called ``name`` (``-`` read as ``_``), implemented or registered."""
        for candidate in (name, name.replace("-", "_")):
            flag = self._flags.get(candidate) or self.registry.get(candidate)
            if flag is not None:
                return candidate, flag
        return name, None

    def _parse_into(
        self, args: list[str], state: _Parse, env: Mapping[str, str], depth: int
    ) -> None:
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                state.positional.extend(args[i:])
                return
            if not arg.startswith("-") or arg == "-":
                state.positional.append(arg)
                continue
            name, has_value, text = arg.lstrip("-").partition("=")
            name, flag = self._lookup(name)
            if flag is None and not has_value and name.startswith("no"):
                negated, negated_flag = self._lookup(name[2:])
                if negated_flag is not None and negated_flag.kind == "bool":
                    self._set(state, negated, negated_flag, "false")
                    continue
            if name in ("flagfile", "fromenv", "tryfromenv", "undefok"):
                if not has_value:
                    if i >= len(args):
                        raise FlagError(f"flag '{name}' is missing its argument")
                    text = args[i]
                    i += 1
                self._builtin(name, text, state, env, depth)
                continue
            if flag is None:
                state.unknown.append(name)
                continue
            if not has_value:
                if flag.kind == "bool":
                    text = "true"
                elif i >= len(args):
                    raise FlagError(f"flag '{name}' is missing its argument")
                else:
                    text = args[i]
                    i += 1
            self._set(state, name, flag, text)

    def _set(self, state: _Parse, name: str, flag: Flag | ImpalaFlag, text: str) -> None:
        if isinstance(flag, Flag):
            state.values[name] = flag.convert(text)
        else:
            state.unimplemented[name] = _typed(flag.kind, text, name)

    def _builtin(
        self, name: str, text: str, state: _Parse, env: Mapping[str, str], depth: int
    ) -> None:
        if name == "flagfile":
            for path in (p for p in text.split(",") if p):
                self._read_flagfile(path, state, env, depth)
        elif name == "undefok":
            state.undefok.update(n.strip() for n in text.split(",") if n.strip())
        else:
            for flag_name in (n.strip() for n in text.split(",") if n.strip()):
                value = env.get(f"FLAGS_{flag_name}")
                if value is None:
                    if name == "fromenv":
                        raise FlagError(f"{flag_name} not found in environment (FLAGS_{flag_name})")
                    continue
                self._parse_into([f"--{flag_name}={value}"], state, env, depth)

    def _read_flagfile(self, path: str, state: _Parse, env: Mapping[str, str], depth: int) -> None:
        if depth >= _MAX_FLAGFILE_DEPTH:
            raise FlagError(f"flagfile '{path}' nests too deeply")
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise FlagError(f"cannot read flagfile '{path}': {e.strerror}") from None
        args = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        self._parse_into(args, state, env, depth + 1)
