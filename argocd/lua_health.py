"""Run the Argo CD health checks of argocd/health/ the way Argo CD runs them, without Argo CD.

What Argo CD does (util/lua/lua.go, checked against v3.5.1): a health script from argocd-cm runs in gopher-lua
(Lua 5.1) with only the package, base and table libraries and a "safe" os (time, date) open -- no string, no
math, no io -- unless `resource.customizations.useOpenLibs.<group_kind>` is "true"; the object is the global
`obj` (JSON decoded: maps and arrays become tables, numbers become Lua numbers, null becomes nil); a run may
take 1 s. The returned table is JSON-encoded into {status, message}; a status outside Healthy, Progressing,
Degraded, Suspended, Missing, Unknown becomes Unknown ("Lua returned an invalid health status"), and a script
error makes the resource Unknown with the error as message.

This module does the same with lupa's Lua 5.1 (PyPI `lupa`, pinned in constraints.txt): the script runs in an
environment holding exactly those libraries, and strings have no methods (gopher-lua gives strings their
metatable only when the string library is opened), so a script that would fail in Argo CD fails here.

    python argocd/lua_health.py FILE.json ...       # or: kubectl get boltzpredictions -o json | ... -
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HEALTH_DIR = Path(__file__).resolve().parent / "health"
HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
INVALID_HEALTH_STATUS = "Lua returned an invalid health status"
TIME_LIMIT_SECONDS = 1.0

# The sandbox, in Lua: returns run(source, chunkname, obj, open_libs, time_limit) -> the script's return value.
_SANDBOX = r"""
local BASE = {"assert", "collectgarbage", "dofile", "error", "getfenv", "getmetatable", "ipairs", "load",
              "loadfile", "loadstring", "module", "next", "pairs", "pcall", "print", "rawequal", "rawget",
              "rawset", "require", "select", "setfenv", "setmetatable", "tonumber", "tostring", "type",
              "unpack", "xpcall", "_VERSION"}
local G = _G
local string_metatable = getmetatable("")
local sethook, clock = debug.sethook, os.clock

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function argocd_env(open_libs)
  local env
  if open_libs then
    env = copy(G)
    for _, lib in ipairs({"string", "table", "math", "io", "os", "coroutine", "package", "debug"}) do
      env[lib] = copy(G[lib])
    end
  else
    env = {}
    for _, name in ipairs(BASE) do env[name] = G[name] end
    env.table = copy(G.table)
    env.package = copy(G.package)
    env.os = {time = G.os.time, date = G.os.date}
  end
  env._G = env
  return env
end

return function(source, chunkname, obj, open_libs, time_limit)
  local chunk, err = loadstring(source, "=" .. chunkname)
  if chunk == nil then
    error(err, 0)
  end
  local env = argocd_env(open_libs)
  env.obj = obj
  setfenv(chunk, env)
  -- gopher-lua sets the string metatable (s:find(...)) only when it opens the string library.
  if not open_libs then
    debug.setmetatable("", nil)
  end
  local deadline = clock() + time_limit
  sethook(function()
    if clock() > deadline then
      error("context deadline exceeded", 2)
    end
  end, "", 1000)
  local ok, result = pcall(chunk)
  sethook()
  debug.setmetatable("", string_metatable)
  if not ok then
    error(result, 0)
  end
  return result
end
"""


class LuaHealthError(RuntimeError):
    """The script failed (Argo CD shows the resource as Unknown, with this message)."""


class ArgoCDLua:
    """One Lua 5.1 runtime with Argo CD's health-script sandbox. `health(script, obj)` -> {status, message}."""

    def __init__(self) -> None:
        from lupa import lua51

        self._lua = lua51.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=False)
        self._run = self._lua.execute(_SANDBOX)

    def to_lua(self, value: Any) -> Any:
        """A JSON value as Argo CD's decodeValue hands it to Lua: dicts and lists become tables (lists
        1-based), None becomes nil (the key is absent), numbers stay numbers (all Lua 5.1 numbers are doubles)."""
        if isinstance(value, dict):
            table = self._lua.table()
            for key, item in value.items():
                if item is not None:
                    table[key] = self.to_lua(item)
            return table
        if isinstance(value, list):
            table = self._lua.table()
            for index, item in enumerate(value, start=1):
                if item is not None:
                    table[index] = self.to_lua(item)
            return table
        return value

    def run(self, script: str, obj: dict, name: str = "health.lua", open_libs: bool = False) -> Any:
        from lupa import lua51

        try:
            return self._run(script, name, self.to_lua(obj), open_libs, TIME_LIMIT_SECONDS)
        except lua51.LuaError as err:
            # Like Argo CD, without the Lua stack trace.
            raise LuaHealthError(str(err).split("\nstack traceback:")[0]) from None

    def health(self, script: str, obj: dict, name: str = "health.lua", open_libs: bool = False) -> dict[str, str]:
        """What Argo CD makes of the script's result: {"status": ..., "message": ...} (message "" when unset)."""
        result = self.run(script, obj, name, open_libs)
        if result is None:  # Argo CD v3: a nil result is an empty health status
            return {"status": "", "message": ""}
        from lupa import lua51

        if lua51.lua_type(result) != "table":
            kind = lua51.lua_type(result) or {
                bool: "boolean",
                int: "number",
                float: "number",
                str: "string",
                bytes: "string",
            }.get(type(result), type(result).__name__)
            raise LuaHealthError(f"expect table output from Lua script, not {kind}")
        status, message = result["status"], result["message"]
        for key, value in (("status", status), ("message", message)):
            if value is not None and not isinstance(value, str):
                raise LuaHealthError(f"health {key} must be a string, got {value!r}")
        if status not in HEALTH_STATUSES:
            return {"status": "Unknown", "message": INVALID_HEALTH_STATUS}
        return {"status": status, "message": message or ""}


def script_path(api_version: str, kind: str) -> Path:
    """argocd/health/<group>/<Kind>/health.lua: the layout of Argo CD's resource_customizations/."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return HEALTH_DIR / group / kind / "health.lua" if group else HEALTH_DIR / kind / "health.lua"


_VM: ArgoCDLua | None = None


def health_of(obj: dict, open_libs: bool = False) -> dict[str, str]:
    """The Argo CD health of one object, by the script for its group and kind."""
    global _VM
    path = script_path(obj.get("apiVersion", ""), obj.get("kind", ""))
    if not path.is_file():
        raise LookupError(f"no health check for {obj.get('apiVersion')} {obj.get('kind')} ({path})")
    _VM = _VM or ArgoCDLua()
    return _VM.health(path.read_text(), obj, name=str(path.relative_to(HEALTH_DIR.parent)), open_libs=open_libs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the Argo CD health of boltz-operator objects (JSON: one "
        "object or a kubectl List) as argocd/health/ computes it."
    )
    parser.add_argument("files", nargs="+", help="JSON files, or - for stdin")
    args = parser.parse_args(argv)
    for name in args.files:
        doc = json.load(sys.stdin if name == "-" else open(name))
        for obj in doc.get("items", [doc]) if doc.get("kind", "").endswith("List") else [doc]:
            meta = obj.get("metadata", {})
            result = health_of(obj)
            print(
                f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}\t{result['status']}\t{result['message']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
