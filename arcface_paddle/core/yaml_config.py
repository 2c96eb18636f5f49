"""YAML configs as data, shared by the recognition and the detector trainers.

A config file may name ``base: other.yaml`` (relative to itself); the chain is merged base first.
``-o key=value`` overrides use dotted keys with YAML-typed values.  Every key must exist in the caller's
schema of defaults: :func:`check_known_key` turns a typo into a :class:`ToolkitError` naming close matches.
"""
from __future__ import annotations

import difflib
import os

import yaml

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import read_text_file


def load_yaml_file(path: str, what: str = "YAML file"):
    """The parsed contents of a UTF-8 YAML file; unreadable text or invalid YAML is a one-line ToolkitError."""
    try:
        return yaml.safe_load(read_text_file(path, what))
    except yaml.YAMLError as error:
        raise ToolkitError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None


def read_yaml_mapping(path: str, what: str = "YAML file", empty_ok: bool = False) -> dict:
    """A YAML file that must hold one mapping of keys (``empty_ok``: an empty file reads as ``{}``)."""
    raw = load_yaml_file(path, what)
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise ToolkitError(f"{path}: expected a mapping of keys in this {what}, found {type(raw).__name__}")
    return raw


def read_yaml_chain(path: str, seen: tuple = ()) -> dict:
    """Read a YAML mapping, merged over the files its ``base:`` chain names."""
    real = os.path.realpath(path)
    if real in seen:
        raise ToolkitError(f"{path}: 'base:' chain loops back to itself")
    if not os.path.exists(path):
        raise ToolkitError(f"{path}: config file not found")
    raw = read_yaml_mapping(path, "config file", empty_ok=True)
    base = raw.pop("base", None)
    if base is None:
        return raw
    base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
    merged = read_yaml_chain(base_path, seen + (real,))
    deep_update(merged, raw)
    return merged


def deep_update(target: dict, update: dict) -> None:
    """Merge ``update`` into ``target``, section by section."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_update(target[key], value)
        else:
            target[key] = value


def check_known_key(key: str, schema: dict, dotted: str, source: str) -> None:
    """Refuse a key the schema does not have, suggesting the closest known ones."""
    if key in schema:
        return
    parent = dotted.rsplit(".", 1)[0] + "." if "." in dotted else ""
    close = difflib.get_close_matches(dotted, [parent + name for name in schema], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ToolkitError(f"{source}: unknown config key {dotted!r}{hint}")


def parse_override(item: str) -> tuple:
    """``"a.b=[1, 2]"`` → ``("a.b", [1, 2])`` (the value is parsed as YAML)."""
    if "=" not in item:
        raise ToolkitError(f"-o {item}: expected key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ToolkitError(f"-o {item}: empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def dump_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
