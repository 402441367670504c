#!/usr/bin/env python3
"""Builds skycat's extension upgrade scripts.

    scripts/sql-upgrade.py EXTDIR

EXTDIR is an extension directory holding the current full install script
`skycat--<version>.sql` (what `cargo pgrx install` / `package` just wrote). For every
hand-written `sql/upgrades/<from>--<to>.sql` it writes `EXTDIR/skycat--<from>--<to>.sql`,
and it copies the archived full scripts of earlier releases (`sql/archive/skycat--<v>.sql.gz`,
so that an installation of an earlier release can be created and upgraded, e.g. by the
upgrade test).

An upgrade script is the hand-written file with its `-- @recreate-functions` line replaced by
every function and procedure of the current full script as `CREATE OR REPLACE`, with their
comments, grants and `ALTER FUNCTION` statements. Re-creating them all is what brings an older
installation's functions (bodies, `SET` clauses, strictness, volatility) to the current ones
without restating any of them by hand; the hand-written part holds only what `CREATE OR
REPLACE` cannot do (dropping a function whose result type changed, new types, data
changes). A line `-- @copy-table NAME` is replaced by the statements of the current full script
that create table NAME and set it up (its comment, dump registration, row security, policies,
grants), so a table added by a release is declared once, in sql/. Likewise `-- @copy-type
NAME` (a type added by a release: its shell, its input and output functions, its definition and
comment) and `-- @copy-matching REGEX` (every statement of the current full script that begins
with REGEX, e.g. the operators and operator classes a release adds). The upgrade test checks the
result against a fresh install, object by object.
"""
import gzip
import pathlib
import re
import sys

MARKER = "-- @recreate-functions"
COPY_TABLE = re.compile(r"^-- @copy-table (\w+)$", re.M)
COPY_TYPE = re.compile(r"^-- @copy-type (\w+)$", re.M)
COPY_MATCHING = re.compile(r"^-- @copy-matching (.+)$", re.M)


def statements(sql):
    """Splits SQL text into statements (with their leading comments), honouring quotes,
    dollar quotes and comments."""
    out, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'" or c == '"':
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif c == ";":
            out.append(sql[start : i + 1])
            i += 1
            start = i
        else:
            i += 1
    if sql[start:].strip():
        out.append(sql[start:])
    return out


def body(stmt):
    """The statement without its leading comments (`--` lines, `/* */` blocks) and blanks."""
    s = stmt
    while True:
        t = s.lstrip()
        if t.startswith("--"):
            j = t.find("\n")
            s = "" if j < 0 else t[j + 1 :]
        elif t.startswith("/*"):
            j = t.find("*/")
            s = "" if j < 0 else t[j + 2 :]
        else:
            return t


CREATE = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\b", re.I)
KEEP = re.compile(r"^(COMMENT\s+ON\s+(FUNCTION|PROCEDURE|AGGREGATE)|GRANT\b|ALTER\s+(FUNCTION|PROCEDURE)\b)", re.I)


def recreate_functions(full_script):
    kept = []
    for s in statements(full_script):
        b = body(s)
        if CREATE.match(b):
            kept.append(CREATE.sub(lambda m: "CREATE OR REPLACE " + m.group(2).upper(), b, count=1))
        elif KEEP.match(b):
            kept.append(b)
    return "\n\n".join(kept) + "\n"


def table_statements(full_script, name):
    """The statements of the full script that create table `name` and set it up."""
    n = re.escape(name)
    about = re.compile(
        rf"^(CREATE\s+TABLE\s+{n}\b|COMMENT\s+ON\s+TABLE\s+{n}\b|ALTER\s+TABLE\s+{n}\b"
        rf"|CREATE\s+POLICY\s+\w+\s+ON\s+{n}\b|GRANT\s+.*\s+ON\s+{n}\b"
        rf"|SELECT\s+pg_catalog\.pg_extension_config_dump\('{n}')",
        re.I | re.S,
    )
    found = [body(s) for s in statements(full_script) if about.match(body(s))]
    if not any(re.match(rf"CREATE\s+TABLE\s+{n}\b", b, re.I) for b in found):
        sys.exit(f"sql-upgrade: the install script creates no table {name}")
    return "\n".join(found)


def type_statements(full_script, name):
    """The statements of the full script that create type `name` (shell, input and output
    functions, definition) and comment on it, in the script's order."""
    n = re.escape(name)
    bodies = [body(s) for s in statements(full_script)]
    definition = next((b for b in bodies if re.match(rf"CREATE\s+TYPE\s+{n}\s*\(", b, re.I)), "")
    io = re.findall(r"\b(?:INPUT|OUTPUT)\s*=\s*(\w+)", definition, re.I)
    about = re.compile(
        rf"^(CREATE\s+TYPE\s+{n}\b|COMMENT\s+ON\s+TYPE\s+{n}\b"
        + "".join(rf"|CREATE\s+FUNCTION\s+{re.escape(f)}\s*\(" for f in io)
        + ")",
        re.I | re.S,
    )
    found = [b for b in bodies if about.match(b)]
    if not found:
        sys.exit(f"sql-upgrade: the install script creates no type {name}")
    return "\n".join(found)


def matching_statements(full_script, pattern):
    """The statements of the full script that begin with `pattern` (a regex), in order."""
    begins = re.compile(rf"^(?:{pattern})", re.I | re.S)
    found = [body(s) for s in statements(full_script) if begins.match(body(s))]
    if not found:
        sys.exit(f"sql-upgrade: no statement of the install script begins with {pattern}")
    return "\n".join(found)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    extdir = pathlib.Path(sys.argv[1])
    repo = pathlib.Path(__file__).resolve().parent.parent
    cargo = (repo / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', cargo, re.M | re.S)
    if not m:
        sys.exit("sql-upgrade: no [workspace.package] version in Cargo.toml")
    current = extdir / f"skycat--{m.group(1)}.sql"
    if not current.exists():
        sys.exit(f"sql-upgrade: {current} is missing (install the extension first)")
    generic = recreate_functions(current.read_text())
    written = []
    for hand in sorted((repo / "sql" / "upgrades").glob("*--*.sql")):
        text = hand.read_text()
        if MARKER not in text:
            sys.exit(f"sql-upgrade: {hand} has no '{MARKER}' line")
        header = f"-- Generated by scripts/sql-upgrade.py from sql/upgrades/{hand.name}: do not edit.\n"
        out = extdir / f"skycat--{hand.name}"
        full = current.read_text()
        text = COPY_TABLE.sub(lambda m: m.group(0) + "\n" + table_statements(full, m.group(1)), text)
        text = COPY_TYPE.sub(lambda m: m.group(0) + "\n" + type_statements(full, m.group(1)), text)
        text = COPY_MATCHING.sub(lambda m: m.group(0) + "\n" + matching_statements(full, m.group(1)), text)
        out.write_text(header + text.replace(MARKER, MARKER + "\n" + generic, 1))
        written.append(out.name)
    # Earlier releases' install scripts, as they were generated then (kept compressed: they
    # are build artifacts of those releases, never edited).
    for old in sorted((repo / "sql" / "archive").glob("skycat--*.sql.gz")):
        name = old.name[: -len(".gz")]
        (extdir / name).write_bytes(gzip.decompress(old.read_bytes()))
        written.append(name)
    print("sql-upgrade: wrote " + ", ".join(written) + f" into {extdir}")


if __name__ == "__main__":
    main()
