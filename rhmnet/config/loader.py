"""Reading configs: named YAML files with ``BASE:`` inheritance, ``KEY=value`` overrides, coercion to the
schema's types.

Named experiments live in ``configs/<name>.yaml``. A file that names a ``BASE`` (a named config or a path)
lists only its differences from it; a file without ``BASE`` is read on top of the authors' defaults
(:mod:`rhmnet.config.compat`). Command-line overrides use dotted ``KEY=value`` pairs, e.g.
``TRAIN.LR=1e-4 MODEL.HIDDEN_DIM=128``. Unknown keys are errors that name the offending key. Every config
returned here has passed :func:`rhmnet.config.checks.check_config`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Optional

import yaml

from rhmnet.config.checks import check_config
from rhmnet.config.compat import AUTHORS_DEFAULT, check_compat_values
from rhmnet.config.schema import Config, ConfigError


def _find_config_dir() -> Path:
    """The named experiment YAMLs: ``rhmnet/configs`` in an installed wheel, ``configs/`` in a checkout."""
    package = Path(__file__).resolve().parents[1]  # rhmnet/
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    return package.parent / "configs"


CONFIG_DIR = _find_config_dir()


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a dataclass field annotation, converting ints to floats where needed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"config key {key}: expected a list, got {value!r}")
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key}: expected true/false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        return value
    return value


def merge_dict(cfg: Any, updates: dict[str, Any], prefix: str = "") -> None:
    """Recursively apply ``updates`` (nested dict) to the dataclass ``cfg`` in place (types only: the
    values are checked by the functions that return a config)."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config section {prefix or '<root>'} must be a mapping, got {updates!r}")
    types_ = typing.get_type_hints(type(cfg))
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in types_:
            raise ConfigError(f"unknown config key: {full}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            merge_dict(current, value, prefix=f"{full}.")
        else:
            setattr(cfg, key, _coerce(value, types_[key], full))


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """Turn ``["A.B=1", "C=x"]`` into a nested dict; values are parsed as YAML scalars/lists."""
    nested: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form KEY=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def resolve_config_path(name_or_path: str | Path) -> Path:
    """Find a config by name (``configs/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    candidates = [path, CONFIG_DIR / f"{name_or_path}.yaml", CONFIG_DIR / str(name_or_path)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {str(name_or_path)!r} not found (known configs: {', '.join(known)})")


def _read_config_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """``path``'s YAML preceded by the files it inherits from (``BASE: <name or path>``, base first; no
    ``BASE``: the authors' defaults)."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise ConfigError(f"{path}: BASE forms a cycle ({chain})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(data).__name__}")
    base = data.pop("BASE", None)
    if base is None:
        authors_default = CONFIG_DIR / f"{AUTHORS_DEFAULT}.yaml"
        if path.resolve() == authors_default.resolve():
            return [(path, data)]
        return [*_read_config_chain(authors_default, (*seen, path.resolve())), (path, data)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: BASE must name one config, got {base!r}")
    base_path = resolve_config_path(base if Path(base).is_absolute() else _relative_base(path, base))
    return [*_read_config_chain(base_path, (*seen, path.resolve())), (path, data)]


def _relative_base(path: Path, base: str) -> str:
    """A BASE given as a path is relative to the file naming it; a bare name is a named config."""
    sibling = path.parent / base
    return str(sibling) if sibling.is_file() else base


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Default config, then the named/pathed YAML file (after the files it inherits from through
    ``BASE:``), then ``KEY=value`` overrides; checked (:func:`~rhmnet.config.checks.check_config`).
    ``NAME`` defaults to the file's name."""
    cfg = Config()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        chain = _read_config_chain(path)
        for source, data in chain:
            try:
                merge_dict(cfg, data)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        if "NAME" not in chain[-1][1]:  # a NAME inherited from a base file would mix two runs' folders
            cfg.NAME = path.stem
        try:  # the file itself may not set an unimplemented value, whatever the overrides say
            check_compat_values(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    merge_dict(cfg, parse_overrides(overrides))
    check_config(cfg)
    return cfg


def config_from_dict(data: dict[str, Any], overrides: Optional[list[str]] = None) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. inside a checkpoint), with ``KEY=value``
    ``overrides`` on top; checked as :func:`load_config`."""
    cfg = Config()
    merge_dict(cfg, data)
    merge_dict(cfg, parse_overrides(overrides))
    check_config(cfg)
    return cfg
