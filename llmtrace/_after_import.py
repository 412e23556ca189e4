"""Call back right after a module is imported, on the thread that imported it, without importing it.

What ``wrapt.register_post_import_hook`` does, in a few lines and with nothing imported: wrapt 2.5
imports asyncio and importlib.metadata (~0.1 s of CPU) when it is imported, and ``import llmtrace;
instrument()`` before the SDKs needs no wrapt until an SDK is imported (the SDKs import asyncio
anyway). A finder first on ``sys.meta_path`` answers only for the watched names: it asks the other
finders for the module's spec and chains its loader, which runs the callbacks once the module has
executed. Like wrapt's, a callback is not removed once registered and does not see reloads.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

Hook = Callable[[ModuleType], None]

_hooks: dict[str, list[Hook]] = {}
_namespaces: set[str] = set()  # watched namespace packages being imported: nothing of theirs executes
_lock = threading.RLock()
_finder: _Finder | None = None


def when_imported(name: str, hook: Hook) -> None:
    """``hook(module)`` once ``name`` is imported: now if it already is, else right after its import."""
    global _finder
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            if _finder is None:
                _finder = _Finder()
                sys.meta_path.insert(0, _finder)
    if module is not None:
        hook(module)


def _loaded(module: ModuleType) -> None:
    with _lock:
        hooks = _hooks.pop(module.__name__, ())
    for hook in hooks:
        hook(module)


class _Finder:
    """Finds nothing itself: chains the loader of the spec the other finders give for a watched name."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if _namespaces:
            _namespace_loaded(fullname)
        if fullname not in _hooks:
            return None
        busy: set[str] = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = None
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            busy.discard(fullname)
        loader = getattr(spec, "loader", None)
        if loader is not None and hasattr(loader, "exec_module") and not isinstance(loader, _Loader):
            spec.loader = _Loader(loader)
        elif loader is None and getattr(spec, "submodule_search_locations", None) is not None:
            with _lock:  # a namespace package (no loader, no code): its callbacks run before its first submodule loads
                _namespaces.add(fullname)
        return spec


def _namespace_loaded(fullname: str) -> None:
    """Run the callbacks of a watched namespace package once a submodule of it is looked for (it is imported then)."""
    with _lock:
        done = [name for name in _namespaces if fullname.startswith(name + ".") and name in sys.modules]
        _namespaces.difference_update(done)
    for name in done:
        _loaded(sys.modules[name])


class _Loader:
    """The module's own loader, then the callbacks; the module keeps its own loader in ``__loader__``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        _loaded(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, get_resource_reader, ...
        return getattr(self._loader, name)
