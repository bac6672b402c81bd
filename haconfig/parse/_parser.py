"""The parser: lines into sections, each keyword dispatched through its section's
table (``global``: :mod:`._global`; proxies: :mod:`._proxy`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from haconfig.lexer import LexError, split_line
from haconfig.model import (
    Directive,
    Global,
    Location,
    Proxy,
    SectionKind,
)
from haconfig.parse._diagnostics import Level, Message, _suggest
from haconfig.parse._global import _GLOBAL_KW
from haconfig.parse._proxy import _PROXY_KW
from haconfig.parse._words import (
    _GLOBAL_UNIMPLEMENTED,
    _LEGACY_TIMEOUTS,
    _OTHER_SECTIONS,
    _PROXY_UNIMPLEMENTED,
    _SECTIONS,
    _invalid_char,
    _section_kind_word,
)

# --------------------------------------------------------------------------------------
# the parser


@dataclass
class _Section:
    """The section being read: a proxy being built, ``global``, an ignored section, or a
    proxy whose header failed (every keyword then gets HAProxy's cascade error)."""

    kind: str  # "global", "proxy", "ignored", "failed"
    proxy: Proxy | None = None
    ignored_name: str = ""


@dataclass
class _Parser:
    env: Mapping[str, str]
    messages: list[Message] = field(default_factory=list)
    global_: Global = field(default_factory=Global)
    sections: list[Proxy] = field(default_factory=list)
    ignored: list[Directive] = field(default_factory=list)
    files_with_errors: list[str] = field(default_factory=list)
    cur: _Section | None = None
    aborted: bool = False
    file_errors: bool = False

    # --- diagnostics ----------------------------------------------------------------

    def alert(self, loc: Location, text: str, *, style: str = "parsing") -> None:
        self.messages.append(Message(Level.ALERT, self._prefix(loc, style) + text, loc))
        self.file_errors = True

    def warn(self, loc: Location, text: str, *, style: str = "parsing") -> None:
        self.messages.append(Message(Level.WARNING, self._prefix(loc, style) + text, loc))

    @staticmethod
    def _prefix(loc: Location, style: str) -> str:
        if style == "parsing":
            return f"parsing [{loc}] : "
        if style == "tight":
            return f"parsing [{loc}]: "
        if style == "bare":
            return f"[{loc}] : "
        if style == "none":
            return ""
        raise AssertionError(style)

    def unimplemented(self, loc: Location, what: str) -> None:
        self.warn(
            loc,
            f"{what} is accepted but not implemented by impala-lb; it is kept and ignored.",
        )

    # --- lines and sections ---------------------------------------------------------

    def feed_file(self, text: str, filename: str) -> None:
        self.file_errors = False
        self.cur = None  # HAProxy starts every file out of any section
        for lineno, raw in enumerate(text.splitlines(), start=1):
            loc = Location(filename, lineno)
            try:
                words = split_line(raw, self.env)
            except LexError as exc:
                pointer = " " * (exc.position - 1 - (len(raw) - len(raw.lstrip())))
                self.alert(
                    loc,
                    f"{exc}:\n  {raw.strip()}\n  {pointer}^",
                    style="tight",
                )
                continue
            if not words:
                continue
            self.line(words, loc)
            if self.aborted:
                break
        self.close_section()
        if self.file_errors:
            self.files_with_errors.append(filename)

    def close_section(self) -> None:
        if self.cur is not None and self.cur.kind == "proxy" and self.cur.proxy is not None:
            self.sections.append(self.cur.proxy)
        self.cur = None

    def line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        if kw in _SECTIONS:
            self.close_section()
            if kw == "global":
                self.cur = _Section("global")
            else:
                self.open_proxy(SectionKind(kw), words, loc)
            return
        if kw in _OTHER_SECTIONS:
            self.close_section()
            self.cur = _Section("ignored", ignored_name=kw)
            self.ignored.append(Directive(kw, tuple(words[1:]), loc))
            self.unimplemented(loc, f"section '{kw}'")
            return
        if self.cur is None:
            self.alert(loc, f"unknown keyword '{kw}' out of section.", style="tight")
            return
        if self.cur.kind == "failed":
            self.alert(loc, "'listen' or 'defaults' expected.")
            return
        if self.cur.kind == "ignored":
            self.ignored.append(Directive(kw, tuple(words[1:]), loc))
            return
        if self.cur.kind == "global":
            self.global_line(words, loc)
            return
        self.proxy_line(words, loc)

    def open_proxy(self, kind: SectionKind, words: list[str], loc: Location) -> None:
        kw = kind.value
        args = words[1:]
        name = args[0] if args else ""
        if kind is not SectionKind.DEFAULTS and not name:
            self.alert(loc, f"'{kw}' expects an <id> argument")
            self.aborted = True  # HAProxy stops reading here (ERR_ABORT)
            return
        bad = _invalid_char(name) if name else None
        if bad is not None:  # fatal, but HAProxy still opens the section
            self.alert(loc, f"character '{bad}' is not permitted in '{kw}' name '{name}'.")
        from_defaults = None
        rest = args[1:]
        if rest and rest[0] == "from":
            if len(rest) < 2:
                self.alert(loc, f"'{kw}' '{name}' : missing name for defaults after 'from'.")
                self.aborted = True
                return
            from_defaults = rest[1]
            if not any(
                p.kind is SectionKind.DEFAULTS and p.name == from_defaults for p in self.sections
            ):
                self.alert(loc, f"defaults section '{from_defaults}' not found for proxy '{name}'.")
                self.aborted = True
                return
            rest = rest[2:]
        if rest:
            if kind in (SectionKind.FRONTEND, SectionKind.LISTEN):
                self.alert(loc, "please use the 'bind' keyword for listening addresses.")
            else:
                self.alert(loc, f"'{kw}' takes no address argument ('{rest[0]}').")
            self.cur = _Section("failed")
            return
        if kind is not SectionKind.DEFAULTS:
            self.check_duplicate_proxy(kind, name, loc)
        self.cur = _Section("proxy", Proxy(kind, name, from_defaults=from_defaults, location=loc))

    def check_duplicate_proxy(self, kind: SectionKind, name: str, loc: Location) -> None:
        for other in self.sections:
            if other.name != name or other.kind is SectionKind.DEFAULTS:
                continue
            clash = (kind.has_frontend and other.kind.has_frontend) or (
                kind.has_backend and other.kind.has_backend
            )
            if clash:
                self.messages.append(
                    Message(
                        Level.ALERT,
                        f"Parsing [{loc}]: {kind.value} '{name}' has the same name as "
                        f"{other.kind.value} '{name}' declared at {other.location}.",
                        loc,
                    )
                )
                self.file_errors = True
                return

    # --- proxy keywords -------------------------------------------------------------

    @property
    def proxy(self) -> Proxy:
        assert self.cur is not None and self.cur.proxy is not None
        return self.cur.proxy

    def set(self, **changes: Any) -> None:
        assert self.cur is not None and self.cur.proxy is not None
        self.cur.proxy = replace(self.cur.proxy, **changes)

    def add(self, field_name: str, item: object) -> None:
        self.set(**{field_name: (*getattr(self.proxy, field_name), item)})

    def keep_other(self, words: list[str], loc: Location) -> None:
        self.add("other", Directive(words[0], tuple(words[1:]), loc))

    def lacks(self, needs: str) -> bool:
        """Whether the current proxy lacks capability ``needs`` (``F`` or ``B``, spec 1.3)."""
        p = self.proxy
        has = p.kind.has_frontend if needs == "F" else p.kind.has_backend
        return not has

    def capability_text(self, needs: str) -> str:
        p = self.proxy
        what = "frontend" if needs == "F" else "backend"
        return f"{_section_kind_word(p.kind)} '{p.name}' has no {what} capability"

    def proxy_line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        p = self.proxy
        if kw == "no" and len(words) > 1 and words[1] in ("option", "log"):
            entry = _PROXY_KW[words[1]]
            entry.handler(self, words, loc)
            return
        if kw in _LEGACY_TIMEOUTS:
            self.alert(
                loc,
                f"the '{kw}' directive is not supported anymore since HAProxy 2.1. "
                f"Use 'timeout {_LEGACY_TIMEOUTS[kw]}'.",
            )
            return
        found = _PROXY_KW.get(kw)
        if found is None:
            if kw in _PROXY_UNIMPLEMENTED:
                needs = _PROXY_UNIMPLEMENTED[kw]
                if needs and self.lacks(needs):
                    self.warn(loc, f"'{kw}' ignored because {self.capability_text(needs)}.")
                else:
                    self.unimplemented(loc, f"'{kw}'")
                self.keep_other(words, loc)
                return
            where = p.kind.value
            cands = list(_PROXY_KW) + list(_PROXY_UNIMPLEMENTED) + list(_LEGACY_TIMEOUTS)
            self.alert(loc, f"unknown keyword '{kw}' in '{where}' section" + _suggest(kw, cands))
            return
        entry = found
        if p.kind is SectionKind.DEFAULTS and entry.not_in_defaults:
            if entry.not_in_defaults == "anonymous" and p.name:
                pass
            elif kw == "tcp-request":
                what = f"tcp-request {words[1]}" if len(words) > 1 else "tcp-request"
                self.alert(loc, f"{what} is not allowed in anonymous 'defaults' sections")
                return
            elif entry.not_in_defaults == "anonymous":
                self.alert(loc, f"'{kw}' not allowed in anonymous 'defaults' section.")
                return
            else:
                style = entry.not_in_defaults
                self.alert(loc, f"'{kw}' not allowed in 'defaults' section.", style=style)
                return
        if entry.needs and self.lacks(entry.needs):
            if kw in ("server", "default-server"):
                self.alert(
                    loc,
                    f"parsing [{loc}] : '{kw}' not allowed because "
                    f"{self.capability_text(entry.needs)}.",
                    style="bare",
                )
                return
            self.warn(
                loc, f"'{kw}' ignored because {self.capability_text(entry.needs)}.{entry.hint}"
            )
            self.keep_other(words, loc)
            return
        entry.handler(self, words, loc)

    # --- global keywords ------------------------------------------------------------

    def global_line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        handler = _GLOBAL_KW.get(kw)
        if handler is not None:
            handler(self, words, loc)
            return
        if kw in _GLOBAL_UNIMPLEMENTED or kw.startswith("tune.") or kw.startswith("ssl-"):
            if kw != "ssl-server-verify":
                self.unimplemented(loc, f"'{kw}'")
            self.global_ = replace(
                self.global_, other=(*self.global_.other, Directive(kw, tuple(words[1:]), loc))
            )
            return
        cands = list(_GLOBAL_KW) + sorted(_GLOBAL_UNIMPLEMENTED)
        self.alert(loc, f"unknown keyword '{kw}' in 'global' section" + _suggest(kw, cands))

    def gset(self, **changes: Any) -> None:
        self.global_ = replace(self.global_, **changes)
