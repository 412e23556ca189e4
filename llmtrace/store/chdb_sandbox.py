"""Open a chDB data directory with ClickHouse's own access control between queries and the host.

chDB runs ClickHouse in "local" mode, where by default every query may read and write any
host file (``file()``, ``INTO OUTFILE``), fetch URLs and open connections. Here the engine
itself refuses that: its only user, ``default``, is given every privilege except the
*sources* (FILE, URL, S3, HDFS, REMOTE, MYSQL, POSTGRES, JDBC, ODBC, ...), SYSTEM, KILL
QUERY, BACKUP and access management, and its settings profile pins the settings that name
host files (format schemas and templates), lets ``Values`` data be literals only (an
expression there would be evaluated outside any statement check) and caps one query's memory
(``max_memory_usage``, lowerable, never liftable).

chDB facts this relies on (verified with chdb 4.4 / ClickHouse 26.9; tests pin them):

- ``users_config`` in the server config file is honoured; grants and ``REVOKE`` in it apply.
- The database named by ``default_database`` is an *overlay* of a regular database and a
  read-through view of the host file system (``SELECT * FROM '/etc/passwd'``), and creating
  or reading tables in it needs ``READ ON FILE``. So that database is moved to a scratch name
  nobody uses, and ``default`` becomes a plain ``Atomic`` database described by
  ``metadata/default.sql``. An existing directory keeps its tables: the overlay's regular
  part is an Atomic database whose UUID is the target of the ``metadata/default`` symlink,
  and ``default.sql`` is written with that UUID. The symlink is removed before each open
  (the engine recreates it), because the overlay would otherwise claim the same UUID.
- Such a directory still opens with plain chDB (no config): ``default`` is then the overlay
  again, over the same tables.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SCRATCH_DATABASE", "SandboxError", "connection_string", "prepare", "verify"]

SCRATCH_DATABASE = "llmtrace_scratch"
"""Where chDB's file-system overlay database goes; nothing of llmtrace's lives there."""

_CONFIG_NAME = "llmtrace-clickhouse.xml"
_USERS_NAME = "llmtrace-users.xml"
_UUID = re.compile(r"UUID '([0-9a-f-]{36})'")

# Settings whose value names a file the engine would read or write.
_PINNED_SETTINGS = {
    "format_schema": "",
    "format_template_resultset": "",
    "format_template_row": "",
    "output_format_schema": "",
    "input_format_values_interpret_expressions": "0",
    "input_format_values_deduce_templates_of_expressions": "0",
    "allow_introspection_functions": "0",
}
_MEMORY_SHARE = 0.4
"""Most of the machine's RAM one query may use: a read-only ``GET`` aggregating ``numbers(1e10)``
would otherwise grow the process to the engine's own limit (90% of RAM), taking the developer's
laptop with it. Clients may lower it, never lift it (a profile constraint; 0 means unlimited, so
the floor is 1)."""
_REVOKED = "SOURCES, SYSTEM, KILL QUERY, KILL TRANSACTION, BACKUP, ACCESS MANAGEMENT, NAMED COLLECTION ADMIN"

_CONFIG = """<clickhouse>
  <!-- written by llmtrace at every open; edits are overwritten -->
  <user_files_path>{user_files}/</user_files_path>
  <default_database>{scratch}</default_database>
  <users_config>{users}</users_config>
  <merge_tree>
    <non_replicated_deduplication_window>100</non_replicated_deduplication_window>
  </merge_tree>
</clickhouse>
"""
_USERS = """<clickhouse>
  <!-- written by llmtrace at every open; edits are overwritten -->
  <profiles>
    <default>
{defaults}
      <constraints>
{constraints}
      </constraints>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <profile>default</profile>
      <quota>default</quota>
      <grants>
        <query>GRANT ALL ON *.*</query>
        <query>REVOKE {revoked} ON *.*</query>
      </grants>
    </default>
  </users>
  <quotas><default></default></quotas>
</clickhouse>
"""


class SandboxError(RuntimeError):
    """The engine did not come up with the access control llmtrace configured."""


def _default_database_uuid(data_dir: Path) -> str:
    """The UUID of the ``default`` database's table directory, creating one if new."""
    metadata = data_dir / "metadata"
    sql = metadata / "default.sql"
    if sql.exists():
        match = _UUID.search(sql.read_text())
        if match is None:
            raise SandboxError(f"{sql} does not name the database's UUID; move it away and restart")
        return match.group(1)
    link = metadata / "default"
    if link.is_symlink():
        return Path(os.readlink(link)).name
    return str(uuid.uuid4())


def _memory_cap() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * _MEMORY_SHARE)
    except (ValueError, OSError):
        return 4 << 30


def prepare(data_dir: Path) -> Path:
    """Write the config files and the ``default`` database's metadata; returns the config path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    metadata = data_dir / "metadata"
    metadata.mkdir(exist_ok=True)
    db_uuid = _default_database_uuid(data_dir)
    (data_dir / "store" / db_uuid[:3] / db_uuid).mkdir(parents=True, exist_ok=True)
    sql = metadata / "default.sql"
    if not sql.exists():
        sql.write_text(f"ATTACH DATABASE _ UUID '{db_uuid}'\nENGINE = Atomic\n")
    link = metadata / "default"
    if link.is_symlink():
        link.unlink()
    user_files = data_dir / "user_files"
    user_files.mkdir(exist_ok=True)
    users = data_dir / _USERS_NAME
    cap = _memory_cap()
    defaults = "\n".join(f"      <{k}>{v}</{k}>" for k, v in {**_PINNED_SETTINGS, "max_memory_usage": cap}.items())
    constraints = "\n".join(f"        <{k}><const/></{k}>" for k in _PINNED_SETTINGS)
    constraints += f"\n        <max_memory_usage><min>1</min><max>{cap}</max></max_memory_usage>"
    users.write_text(_USERS.format(defaults=defaults, constraints=constraints, revoked=_REVOKED))
    config = data_dir / _CONFIG_NAME
    config.write_text(_CONFIG.format(user_files=user_files, scratch=SCRATCH_DATABASE, users=users))
    return config


def connection_string(data_dir: Path) -> str:
    """``prepare`` the directory and return what ``chdb.connect`` takes to open it sandboxed."""
    config = prepare(data_dir)
    return f"{data_dir}?config-file={config}"


def verify(query: Any) -> None:
    """Check on a fresh engine that the sandbox took effect; ``query(sql)`` returns text.

    A chDB that ignored the config would serve the host's files: refuse to go on instead.
    """
    engine = query("SELECT engine FROM system.databases WHERE name = 'default'").strip()
    if engine != "Atomic":
        raise SandboxError(f"the default database is {engine or 'missing'}, not Atomic: chDB ignored llmtrace's config")
    try:
        query("SELECT count() FROM file('/dev/null', 'LineAsString')")
    except Exception as exc:
        if "ACCESS_DENIED" in str(exc) or "Code: 497" in str(exc):
            return
        raise SandboxError(f"checking that file() is refused failed unexpectedly: {exc}") from exc
    raise SandboxError("the engine allowed file(): chDB ignored llmtrace's access control; not serving")
