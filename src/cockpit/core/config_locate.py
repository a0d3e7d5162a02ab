"""Find the line of a key path in TOML source, so config errors can say `cockpit.toml:42:`.

tomllib gives values but no positions, so this module re-reads the text with a small scanner
that knows just enough TOML to map every key, table header and array element to its line:
`[a.b]`, `[[array]]` (counted for the index), dotted and quoted keys, multi-line strings,
arrays spanning lines, inline tables. It runs only on text that tomllib already accepted; on
anything it does not follow it stops and keeps what it found, so a lookup falls back to the
closest parent instead of failing.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
from collections.abc import Sequence

KeyPath = tuple[str | int, ...]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    '"': '"',
    "\\": "\\",
}
_SCALAR_END = frozenset(",]}\n#")


class _Stop(Exception):
    """The scanner met something it does not follow; keep what was found so far."""


def locate(text: str, path: Sequence[str | int]) -> int | None:
    """1-based line of `path` (0-based indices, as in the parsed data), or of its closest parent.

    None when not even the first key is in the text (e.g. a required table that is missing).
    """
    index = line_index(text)
    for end in range(len(path), 0, -1):
        line = index.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


@functools.lru_cache(maxsize=8)
def line_index(text: str) -> dict[KeyPath, int]:
    """Every key path found in `text` -> the 1-based line where it first appears."""
    scanner = _Scanner(text)
    with contextlib.suppress(_Stop, IndexError):
        scanner.document()
    return scanner.lines


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._tables: dict[KeyPath, int] = {}  # array-of-tables path -> elements seen so far

    # -- bookkeeping -------------------------------------------------------------------------

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def mark(self, path: KeyPath, pos: int) -> None:
        """Record `path` and every parent not seen yet (the first mention wins)."""
        line = self.line_at(pos)
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos : self.pos + count]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_blanks(self) -> None:
        """Spaces and tabs only."""
        while not self.at_end() and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_comment(self) -> None:
        if self.peek() == "#":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end

    def skip_space(self) -> None:
        """Blanks, newlines and comments (inside arrays and between statements)."""
        while not self.at_end():
            self.skip_blanks()
            self.skip_comment()
            if self.peek() in ("\n", "\r"):
                self.pos += 1
            else:
                return

    def expect(self, token: str) -> None:
        if self.peek(len(token)) != token:
            raise _Stop
        self.pos += len(token)

    # -- grammar -----------------------------------------------------------------------------

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_space()
            if self.at_end():
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)
            self.skip_blanks()
            self.skip_comment()

    def header(self) -> KeyPath:
        start = self.pos
        is_array = self.peek(2) == "[["
        self.pos += 2 if is_array else 1
        self.skip_blanks()
        keys = self.key()
        self.skip_blanks()
        self.expect("]]" if is_array else "]")
        resolved: KeyPath = ()
        for key in keys[:-1]:
            resolved += (key,)
            if resolved in self._tables:  # [a.b] under [[a]] means the last element of a
                resolved += (self._tables[resolved] - 1,)
        path = resolved + (keys[-1],)
        if is_array:
            number = self._tables.get(path, 0)
            self._tables[path] = number + 1
            path += (number,)
        self.mark(path, start)
        return path

    def key_value(self, table: KeyPath) -> None:
        start = self.pos
        path = table + self.key()
        self.mark(path, start)
        self.skip_blanks()
        self.expect("=")
        self.skip_blanks()
        self.value(path)

    def key(self) -> KeyPath:
        parts: list[str] = []
        while True:
            self.skip_blanks()
            char = self.peek()
            if char == '"':
                parts.append(self.basic_string())
            elif char == "'":
                parts.append(self.literal_string())
            else:
                start = self.pos
                while not self.at_end() and self.text[self.pos] in _BARE_KEY:
                    self.pos += 1
                if self.pos == start:
                    raise _Stop
                parts.append(self.text[start : self.pos])
            self.skip_blanks()
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if self.peek(3) in ('"""', "'''"):
            self.multiline_string(self.peek(3))
        elif char == '"':
            self.basic_string()
        elif char == "'":
            self.literal_string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            start = self.pos
            while not self.at_end() and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1
            if self.pos == start:
                raise _Stop

    def array(self, path: KeyPath) -> None:
        self.expect("[")
        number = 0
        while True:
            self.skip_space()
            if self.peek() == "]":
                self.pos += 1
                return
            self.mark(path + (number,), self.pos)
            self.value(path + (number,))
            number += 1
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise _Stop

    def inline_table(self, path: KeyPath) -> None:
        self.expect("{")
        while True:
            self.skip_space()
            if self.peek() == "}":
                self.pos += 1
                return
            self.key_value(path)
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise _Stop

    def basic_string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while True:
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\n":
                raise _Stop
            if char == "\\":
                out.append(self.escape())
            else:
                out.append(char)
                self.pos += 1

    def escape(self) -> str:
        code = self.text[self.pos + 1]
        width = {"u": 4, "U": 8}.get(code)
        if width is None:
            self.pos += 2
            return _ESCAPES.get(code, code)
        digits = self.text[self.pos + 2 : self.pos + 2 + width]
        self.pos += 2 + width
        try:
            return chr(int(digits, 16))
        except ValueError as err:
            raise _Stop from err

    def literal_string(self) -> str:
        self.expect("'")
        end = self.text.find("'", self.pos)
        if end < 0 or "\n" in self.text[self.pos : end]:
            raise _Stop
        content = self.text[self.pos : end]
        self.pos = end + 1
        return content

    def multiline_string(self, quotes: str) -> None:
        self.pos += 3
        while True:
            if self.text[self.pos] == "\\" and quotes == '"""':
                self.pos += 2
            elif self.peek(3) == quotes:
                self.pos += 3
                # Up to two quote characters may end the content right before the delimiter.
                for _ in range(2):
                    if self.peek() == quotes[0]:
                        self.pos += 1
                return
            else:
                self.pos += 1
