"""Build an HTML form out of a task's `input_schema`, and turn a POST back into typed input.

The form is a tree of fields that mirrors the schema. Each field knows how to show a value
(`bind`), how to read itself back from the submitted data (`parse`), and which browser-native
validation attributes it can carry. jsonschema (runs.validation) stays the judge: the browser
attributes only save a round trip.

Input names are the dotted paths jsonschema errors use ("input.address.country",
"input.tags.0"), so a server-side error lands next to the field it is about. What the generator
cannot express becomes a JSON editor for that field, never an error.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from runs.validation import FieldError, loads_json, schema_errors

ROOT = "input"
MAX_DEPTH = 8  # deeper (or recursive) schemas fall back to a JSON editor
SHORT_ENUM = 4  # enums with at most this many options are radios / checkboxes
LONG_TEXT = 200  # a string whose maxLength exceeds this gets a textarea
INPUT_TYPES = {
    "date": "date",
    "date-time": "datetime-local",
    "time": "time",
    "email": "email",
    "uri": "url",
    "password": "password",
}
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class _Missing:
    """The field was left empty: leave it out of the input rather than send ""."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


# --- schema helpers ---------------------------------------------------------------------------


def resolve(schema: Any, root: dict, depth: int = 0) -> dict | None:
    """Follow local `$ref`s (#/$defs/..., #/definitions/...); sibling keywords win over the target.

    None when the reference cannot be followed (remote, broken, or too deep)."""
    if not isinstance(schema, dict):
        return None
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#") or seen > MAX_DEPTH:
            return None
        target: Any = root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return None
            target = target[part]
        if not isinstance(target, dict):
            return None
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings}
        seen += 1
    return schema


def _types(schema: dict) -> tuple[list[str], bool]:
    """The non-null types a schema allows, and whether null is allowed too."""
    raw = schema.get("type")
    if raw is None:
        if "properties" in schema:
            return ["object"], False
        if "items" in schema:
            return ["array"], False
        return [], False
    types = [raw] if isinstance(raw, str) else list(raw)
    nullable = "null" in types
    return [t for t in types if t != "null"], nullable


def _null_branch(options: list, root: dict) -> tuple[dict | None, bool]:
    """`anyOf: [X, {"type": "null"}]` is how many generators spell "nullable X"."""
    resolved = [resolve(o, root) for o in options]
    if any(r is None for r in resolved):
        return None, False
    others = [r for r in resolved if r.get("type") != "null"]
    if len(others) == 1 and len(resolved) == 2:
        return others[0], True
    return None, False


def humanize(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def _is_integral(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _fmt_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def html_pattern(pattern: str) -> str | None:
    """A JSON Schema `pattern` as an HTML `pattern` attribute (which is always anchored)."""
    if not isinstance(pattern, str):
        return None
    try:
        re.compile(pattern)
    except re.error:
        return None
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[1:-1]
    # JSON Schema patterns match anywhere in the string.
    body = pattern[1:] if pattern.startswith("^") else f".*(?:{pattern})"
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else f"(?:{body}).*"
    return body


# --- fields -----------------------------------------------------------------------------------


@dataclass(eq=False)
class Field:
    """One node of the form. `name` is the submitted name and the jsonschema error path."""

    name: str
    label: str
    schema: dict
    required: bool = False  # the schema requires it within its parent
    html_required: bool = False  # ... and every ancestor is required too, so the browser may insist
    nullable: bool = False
    id_prefix: str = "f"
    errors: list[str] = field(default_factory=list)

    kind = "field"

    @property
    def html_id(self) -> str:
        return f"{self.id_prefix}-{self.name}".replace(".", "-")

    @property
    def help(self) -> str:
        return self.schema.get("description") or ""

    @property
    def hints(self) -> list[str]:
        return []

    @property
    def described_by(self) -> str:
        ids = []
        if self.help or self.hints:
            ids.append(f"{self.html_id}-help")
        if self.errors:
            ids.append(f"{self.html_id}-errors")
        return " ".join(ids)

    def bind(self, value: Any) -> None:
        """Show `value` (a Python value from defaults, a previous run, or MISSING)."""

    def parse(self, data) -> Any:
        """Read the submitted data; return the typed value or MISSING. Keeps what was typed."""
        return MISSING

    def children(self) -> list[Field]:
        return []

    def walk(self):
        yield self
        for child in self.children():
            yield from child.walk()

    def default(self) -> Any:
        return copy.deepcopy(self.schema["default"]) if "default" in self.schema else MISSING

    def _empty(self) -> Any:
        # A required nullable field left empty is null; an optional one is left out.
        return None if (self.nullable and self.required) else MISSING


@dataclass(eq=False)
class TextField(Field):
    kind = "text"
    raw: str = ""

    @property
    def format(self) -> str:
        return self.schema.get("format") or ""

    @property
    def multiline(self) -> bool:
        max_length = self.schema.get("maxLength")
        return self.format == "textarea" or (_is_integral(max_length) and max_length > LONG_TEXT)

    @property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.format, "text")

    @property
    def attrs(self) -> dict[str, Any]:
        s = self.schema
        attrs: dict[str, Any] = {}
        if _is_integral(s.get("minLength")):
            attrs["minlength"] = s["minLength"]
        if _is_integral(s.get("maxLength")):
            attrs["maxlength"] = s["maxLength"]
        if not self.multiline:
            pattern = UUID_PATTERN if self.format == "uuid" else html_pattern(s.get("pattern"))
            if pattern and self.input_type in ("text", "password", "email", "url"):
                attrs["pattern"] = pattern
            if self.input_type in ("datetime-local", "time"):
                attrs["step"] = 1
        if self.format == "uuid":
            attrs["placeholder"] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        if self.format == "password":
            attrs["autocomplete"] = "new-password"
        return attrs

    @property
    def hints(self) -> list[str]:
        s = self.schema
        hints = []
        lo, hi = s.get("minLength"), s.get("maxLength")
        if _is_integral(lo) and _is_integral(hi):
            hints.append(f"{lo}–{hi} characters")
        elif _is_integral(lo) and lo > 0:
            hints.append(f"at least {lo} character{'s' if lo != 1 else ''}")
        elif _is_integral(hi):
            hints.append(f"at most {hi} character{'s' if hi != 1 else ''}")
        if isinstance(s.get("pattern"), str):
            hints.append(f"must match {s['pattern']}")
        if self.format == "date-time":
            hints.append("UTC")
        return hints

    def bind(self, value: Any) -> None:
        if value is MISSING or value is None:
            self.raw = ""
        elif self.format == "date-time" and isinstance(value, str):
            self.raw = _datetime_to_local(value)
        else:
            self.raw = value if isinstance(value, str) else str(value)

    def parse(self, data) -> Any:
        self.raw = data.get(self.name, "")
        if self.raw == "":
            return self._empty()
        if self.format == "date-time":
            return _local_to_datetime(self.raw)
        if self.format == "time" and re.fullmatch(r"\d{2}:\d{2}", self.raw):
            return f"{self.raw}:00"
        return self.raw


def _datetime_to_local(value: str) -> str:
    """An RFC 3339 date-time as a datetime-local value, in UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.isoformat(timespec="seconds")


def _local_to_datetime(raw: str) -> str:
    """A datetime-local value (no zone) as RFC 3339 in UTC; anything else is passed on as typed."""
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(eq=False)
class NumberField(Field):
    kind = "number"
    integer: bool = False
    raw: str = ""

    @property
    def step(self) -> str:
        multiple = _number(self.schema.get("multipleOf"))
        if multiple and multiple > 0:
            base = self._min_bound()
            if base is None or (Decimal(str(base)) % Decimal(str(multiple))) == 0:
                return _fmt_number(multiple)
        return "1" if self.integer else "any"

    def _min_bound(self):
        s = self.schema
        lo = _number(s.get("minimum"))
        ex = _number(s.get("exclusiveMinimum"))
        if ex is not None and self.integer:
            ex_int = math.floor(ex) + 1
            lo = ex_int if lo is None else max(lo, ex_int)
        elif ex is not None and lo is None:
            lo = ex  # HTML has no exclusive bound: the server rejects the bound itself
        return lo

    def _max_bound(self):
        s = self.schema
        hi = _number(s.get("maximum"))
        ex = _number(s.get("exclusiveMaximum"))
        if ex is not None and self.integer:
            ex_int = math.ceil(ex) - 1
            hi = ex_int if hi is None else min(hi, ex_int)
        elif ex is not None and hi is None:
            hi = ex
        return hi

    @property
    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"step": self.step}
        lo, hi = self._min_bound(), self._max_bound()
        if lo is not None:
            attrs["min"] = _fmt_number(lo)
        if hi is not None:
            attrs["max"] = _fmt_number(hi)
        return attrs

    @property
    def hints(self) -> list[str]:
        s = self.schema
        parts = []
        if _number(s.get("minimum")) is not None:
            parts.append(f"at least {_fmt_number(s['minimum'])}")
        if _number(s.get("exclusiveMinimum")) is not None:
            parts.append(f"more than {_fmt_number(s['exclusiveMinimum'])}")
        if _number(s.get("maximum")) is not None:
            parts.append(f"at most {_fmt_number(s['maximum'])}")
        if _number(s.get("exclusiveMaximum")) is not None:
            parts.append(f"less than {_fmt_number(s['exclusiveMaximum'])}")
        if _number(s.get("multipleOf")) is not None:
            parts.append(f"a multiple of {_fmt_number(s['multipleOf'])}")
        prefix = "A whole number" if self.integer else "A number"
        return [f"{prefix}, {', '.join(parts)}"] if parts else []

    def bind(self, value: Any) -> None:
        self.raw = "" if value is MISSING or value is None else str(value)

    def parse(self, data) -> Any:
        self.raw = data.get(self.name, "").strip()
        if self.raw == "":
            return self._empty()
        try:
            number = Decimal(self.raw)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.errors.append("Enter a whole number." if self.integer else "Enter a number.")
            return MISSING
        if number and number.adjusted() > MAX_DECIMAL_EXPONENT:
            # Beyond a float's range no JSON number is stored faithfully, and turning
            # 1e999999999 into an int would take the server minutes.
            self.errors.append(f"Enter a number below 1e{MAX_DECIMAL_EXPONENT}.")
            return MISSING
        if self.integer:
            if number != number.to_integral_value():
                self.errors.append("Enter a whole number.")
                return MISSING
            return int(number)
        if (
            number == number.to_integral_value()
            and "e" not in self.raw.lower()
            and "." not in self.raw
        ):
            return int(number)
        return float(number)


MAX_DECIMAL_EXPONENT = 300


@dataclass(eq=False)
class BooleanField(Field):
    """A checkbox: unchecked means `false`."""

    kind = "checkbox"
    checked: bool = False

    def bind(self, value: Any) -> None:
        self.checked = value is True

    def parse(self, data) -> Any:
        self.checked = data.get(self.name) in ("on", "true", "1")
        return self.checked


@dataclass(eq=False)
class ChoiceField(Field):
    """`enum` (or a nullable boolean): radios when short, a select otherwise."""

    kind = "choice"
    options: list = field(default_factory=list)
    selected: str = ""

    @property
    def raw_values(self) -> bool:
        # Strings go into value="" as they are; anything else as JSON.
        return all(isinstance(o, str) for o in self.options)

    def encode(self, value: Any) -> str:
        return value if self.raw_values else json.dumps(value, sort_keys=True)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(self.encode(o), _option_label(o)) for o in self.options]

    @property
    def as_radios(self) -> bool:
        return len(self.options) <= SHORT_ENUM

    @property
    def allow_blank(self) -> bool:
        return not self.required or self.nullable

    def bind(self, value: Any) -> None:
        self.selected = "" if value is MISSING or value not in self.options else self.encode(value)

    def parse(self, data) -> Any:
        self.selected = data.get(self.name, "")
        if self.selected == "":
            return self._empty()
        for option in self.options:
            if self.encode(option) == self.selected:
                return copy.deepcopy(option)
        self.errors.append("Select one of the options.")
        return MISSING


def _option_label(value: Any) -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if value is None:
        return "None"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(eq=False)
class MultiChoiceField(ChoiceField):
    """An array of `enum` items: checkboxes when short, a multi-select otherwise."""

    kind = "multichoice"
    selected_set: set = field(default_factory=set)

    @property
    def as_radios(self) -> bool:
        return len(self.options) <= 8

    def bind(self, value: Any) -> None:
        values = value if isinstance(value, list) else []
        self.selected_set = {self.encode(v) for v in values if v in self.options}

    def parse(self, data) -> Any:
        picked = data.getlist(self.name) if hasattr(data, "getlist") else data.get(self.name, [])
        self.selected_set = set(picked)
        values = [copy.deepcopy(o) for o in self.options if self.encode(o) in self.selected_set]
        if not values and not self.required:
            return MISSING
        return values


@dataclass(eq=False)
class ConstField(Field):
    """A fixed value: shown, not editable, always sent."""

    kind = "const"

    @property
    def display(self) -> str:
        return _option_label(self.schema["const"])

    def parse(self, data) -> Any:
        return copy.deepcopy(self.schema["const"])


@dataclass(eq=False)
class JsonField(Field):
    """The fallback for anything the generator cannot express: edit the value as JSON."""

    kind = "json"
    raw: str = ""

    def bind(self, value: Any) -> None:
        self.raw = "" if value is MISSING else json.dumps(value, indent=2, ensure_ascii=False)

    def parse(self, data) -> Any:
        self.raw = data.get(self.name, "")
        if self.raw.strip() == "":
            return self._empty()
        try:
            return loads_json(self.raw)
        except ValueError as exc:
            self.errors.append(f"Not valid JSON: {exc}")
            return MISSING


@dataclass(eq=False)
class ObjectField(Field):
    """A nested object: a fieldset of its properties (the root object has no fieldset)."""

    kind = "object"
    fields: list[Field] = field(default_factory=list)
    is_root: bool = False

    def children(self) -> list[Field]:
        return self.fields

    def bind(self, value: Any) -> None:
        value = value if isinstance(value, dict) else {}
        for child in self.fields:
            key = child.name.rsplit(".", 1)[-1]
            child.bind(copy.deepcopy(value[key]) if key in value else child.default())

    def parse(self, data) -> Any:
        result = {}
        entered = False
        for child in self.fields:
            key = child.name.rsplit(".", 1)[-1]
            value = child.parse(data)
            if value is not MISSING:
                result[key] = value
                untouched = isinstance(child, ConstField) or (
                    isinstance(child, BooleanField) and value == (child.default() is True)
                )
                if not untouched:
                    entered = True
            if child.errors:
                entered = True
        if not entered and not self.required and not self.is_root:
            # Nothing typed into an optional object: leave the whole object out.
            return MISSING
        return result


@dataclass(eq=False)
class ArrayField(Field):
    """An array of primitives or objects: one row per item, rows added and removed."""

    kind = "array"
    item_schema: dict = field(default_factory=dict)
    root_schema: dict = field(default_factory=dict)
    depth: int = 0
    rows: list[Field] = field(default_factory=list)

    @property
    def count_name(self) -> str:
        return f"{self.name}.__len"

    @property
    def of_objects(self) -> bool:
        return (
            isinstance(self.rows[0], ObjectField)
            if self.rows
            else _types(self.item_schema)[0] == ["object"]
        )

    @property
    def item_label(self) -> str:
        return self.item_schema.get("title") or self.label

    @property
    def add_label(self) -> str:
        return (self.item_schema.get("title") or "item").lower()

    @property
    def can_add(self) -> bool:
        max_items = self.schema.get("maxItems")
        return not (_is_integral(max_items) and len(self.rows) >= max_items)

    @property
    def hints(self) -> list[str]:
        s = self.schema
        hints = []
        if _is_integral(s.get("minItems")) and s["minItems"] > 0:
            hints.append(f"at least {s['minItems']}")
        if _is_integral(s.get("maxItems")):
            hints.append(f"at most {s['maxItems']}")
        if s.get("uniqueItems"):
            hints.append("no duplicates")
        return [", ".join(hints).capitalize()] if hints else []

    def children(self) -> list[Field]:
        return self.rows

    def _row(self, index: int) -> Field:
        row = build_field(
            self.item_schema,
            f"{self.name}.{index}",
            root=self.root_schema,
            label=f"{self.item_label} {index + 1}",
            required=True,
            html_required=False,
            depth=self.depth + 1,
            id_prefix=self.id_prefix,
        )
        return row

    def bind(self, value: Any) -> None:
        items = value if isinstance(value, list) else []
        minimum = self.schema.get("minItems") if _is_integral(self.schema.get("minItems")) else 0
        self.rows = []
        for index in range(max(len(items), minimum)):
            row = self._row(index)
            row.bind(items[index] if index < len(items) else row.default())
            self.rows.append(row)

    def parse(self, data) -> Any:
        try:
            count = max(0, min(int(data.get(self.count_name, 0)), 1000))
        except ValueError:
            count = 0
        self.rows = [self._row(i) for i in range(count)]
        items = []
        for row in self.rows:
            value = row.parse(data)
            if value is not MISSING:
                items.append(value)
        if not items and not self.required:
            return MISSING
        return items

    def add_row(self) -> Field:
        row = self._row(len(self.rows))
        row.bind(row.default())
        self.rows.append(row)
        return row

    def remove_row(self, index: int, data) -> None:
        """Drop row `index`, renumbering the rest (their names carry the index)."""
        values = []
        for i, row in enumerate(self.rows):
            if i != index:
                values.append(_display_value(row, data))
        self.rows = []
        for i, value in enumerate(values):
            row = self._row(i)
            row.bind(value)
            self.rows.append(row)


def _display_value(field: Field, data) -> Any:
    """What a field currently shows, as a value `bind` understands (for renumbered rows)."""
    if isinstance(field, TextField | NumberField | JsonField):
        # Keep what was typed, even if it does not parse yet.
        raw = field.raw
        if isinstance(field, JsonField):
            try:
                return json.loads(raw) if raw.strip() else MISSING
            except ValueError:
                return raw
        return raw if raw != "" else MISSING
    if isinstance(field, ObjectField):
        out = {}
        for child in field.fields:
            value = _display_value(child, data)
            if value is not MISSING:
                out[child.name.rsplit(".", 1)[-1]] = value
        return out
    errors = list(field.errors)
    value = field.parse(data)
    field.errors = errors
    return value


@dataclass(eq=False)
class VariantField(Field):
    """`oneOf` / `anyOf` of objects: pick a variant, then fill in its fields."""

    kind = "variants"
    variants: list[ObjectField] = field(default_factory=list)
    variant_schemas: list[dict] = field(default_factory=list)
    root_schema: dict = field(default_factory=dict)
    active: int = 0

    @property
    def choice_name(self) -> str:
        return f"{self.name}.__variant"

    @property
    def choices(self) -> list[tuple[int, str, ObjectField]]:
        return [(i, v.label, v) for i, v in enumerate(self.variants)]

    def children(self) -> list[Field]:
        return [self.variants[self.active]] if self.variants else []

    def bind(self, value: Any) -> None:
        self.active = 0
        if isinstance(value, dict):
            for i in range(len(self.variant_schemas)):
                if not self._variant_errors(i, value):
                    self.active = i
                    break
        for i, variant in enumerate(self.variants):
            variant.bind(
                value if i == self.active and isinstance(value, dict) else variant.default()
            )

    def parse(self, data) -> Any:
        try:
            self.active = int(data.get(self.choice_name, 0))
        except ValueError:
            self.active = 0
        if not 0 <= self.active < len(self.variants):
            self.active = 0
        for i, variant in enumerate(self.variants):
            if i != self.active:
                variant.bind(variant.default())
        value = self.variants[self.active].parse(data) if self.variants else MISSING
        if value is MISSING and self.required:
            return {}
        return value

    def _variant_errors(self, index: int, value: Any) -> list[FieldError]:
        schema = dict(self.variant_schemas[index])
        for key in ("$defs", "definitions"):
            if key in self.root_schema:
                schema[key] = self.root_schema[key]
        return schema_errors(schema, value, prefix=self.name)

    def active_errors(self, value: Any) -> list[FieldError]:
        """Errors against the chosen variant, which name fields rather than 'not valid under any'."""
        return self._variant_errors(self.active, value) if self.variants else []


def _variant_label(schema: dict, index: int) -> str:
    if schema.get("title"):
        return schema["title"]
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict) and "const" in prop:
            return f"{humanize(name)}: {_option_label(prop['const'])}"
    return f"Option {index + 1}"


# --- building ---------------------------------------------------------------------------------


def build_field(
    schema: Any,
    name: str,
    *,
    root: dict,
    label: str,
    required: bool,
    html_required: bool,
    depth: int = 0,
    id_prefix: str = "f",
    is_root: bool = False,
) -> Field:
    """The field for one schema node; a JsonField for whatever cannot be expressed."""
    common = dict(name=name, required=required, html_required=html_required, id_prefix=id_prefix)
    resolved = resolve(schema, root) if depth <= MAX_DEPTH else None
    if resolved is None:
        return JsonField(label=label, schema=schema if isinstance(schema, dict) else {}, **common)
    schema = resolved
    label = schema.get("title") or label

    # `anyOf: [X, {"type": "null"}]` -> a nullable X.
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            inner, nullable = _null_branch(schema[key], root)
            if inner is not None:
                merged = {**{k: v for k, v in schema.items() if k != key}, **inner}
                field_ = build_field(
                    merged,
                    name,
                    root=root,
                    label=label,
                    required=required,
                    html_required=html_required,
                    depth=depth + 1,
                    id_prefix=id_prefix,
                )
                field_.nullable = True
                field_.html_required = False
                return field_

    if "const" in schema:
        return ConstField(label=label, schema=schema, **common)

    types, nullable = _types(schema)
    common["nullable"] = nullable
    if nullable:
        common["html_required"] = False

    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        options = [o for o in schema["enum"] if o is not None]
        nullable = nullable or None in schema["enum"]
        common["nullable"] = nullable
        return ChoiceField(label=label, schema=schema, options=options, **common)

    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _build_variants(schema, key, label=label, root=root, depth=depth, **common)

    if len(types) != 1 or any(k in schema for k in ("allOf", "oneOf", "anyOf", "not", "if")):
        return JsonField(label=label, schema=schema, **common)

    kind = types[0]
    if kind == "string":
        return TextField(label=label, schema=schema, **common)
    if kind in ("integer", "number"):
        return NumberField(label=label, schema=schema, integer=kind == "integer", **common)
    if kind == "boolean":
        if nullable:
            return ChoiceField(label=label, schema=schema, options=[True, False], **common)
        return BooleanField(label=label, schema=schema, **common)
    if kind == "array":
        return _build_array(schema, label=label, root=root, depth=depth, **common)
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            # A free-form map (additionalProperties / patternProperties only).
            return JsonField(label=label, schema=schema, **common)
        return _build_object(schema, label=label, root=root, depth=depth, is_root=is_root, **common)
    return JsonField(label=label, schema=schema, **common)


def _build_object(schema, *, label, root, depth, is_root=False, **common) -> Field:
    required_keys = set(schema.get("required") or [])
    fields = []
    for key, prop in schema["properties"].items():
        is_required = key in required_keys
        fields.append(
            build_field(
                prop,
                f"{common['name']}.{key}",
                root=root,
                label=humanize(key),
                required=is_required,
                html_required=is_required and (common["html_required"] or is_root),
                depth=depth + 1,
                id_prefix=common["id_prefix"],
            )
        )
    return ObjectField(label=label, schema=schema, fields=fields, is_root=is_root, **common)


def _build_array(schema, *, label, root, depth, **common) -> Field:
    items = resolve(schema.get("items"), root) if isinstance(schema.get("items"), dict) else None
    if items is None or "prefixItems" in schema:
        return JsonField(label=label, schema=schema, **common)
    item_types, item_nullable = _types(items)
    if isinstance(items.get("enum"), list) and items["enum"] and not item_nullable:
        return MultiChoiceField(label=label, schema=schema, options=list(items["enum"]), **common)
    if item_types == ["array"] or len(item_types) != 1 and "enum" not in items:
        # Arrays of arrays and of mixed types are clearer as JSON.
        return JsonField(label=label, schema=schema, **common)
    return ArrayField(
        label=label, schema=schema, item_schema=items, root_schema=root, depth=depth, **common
    )


def _build_variants(schema, key, *, label, root, depth, **common) -> Field:
    resolved = [resolve(o, root) for o in schema[key]]
    if any(r is None or _types(r)[0] != ["object"] or not r.get("properties") for r in resolved):
        return JsonField(label=label, schema=schema, **common)
    variants = []
    for i, variant_schema in enumerate(resolved):
        # The parent's own properties (a shared discriminator, say) belong to every variant.
        merged = {
            **variant_schema,
            "type": "object",
            "properties": {**(schema.get("properties") or {}), **variant_schema["properties"]},
            "required": sorted(
                set(schema.get("required") or []) | set(variant_schema.get("required") or [])
            ),
        }
        merged.setdefault("title", _variant_label(variant_schema, i))
        variants.append(
            _build_object(
                merged,
                label=merged["title"],
                root=root,
                depth=depth + 1,
                name=common["name"],
                required=True,
                html_required=common["html_required"],
                id_prefix=f"{common['id_prefix']}-v{i}",
            )
        )
    return VariantField(
        label=label,
        schema=schema,
        variants=variants,
        variant_schemas=resolved,
        root_schema=root,
        **common,
    )


# --- the form ---------------------------------------------------------------------------------


class SchemaForm:
    """The input part of the launch form.

    SchemaForm(schema, initial=value) shows a value; SchemaForm(schema, data=request.POST)
    reads a submission: `value` is the typed input, `is_valid()` runs jsonschema and files every
    error under its field (or in `errors` when it is about the input as a whole).
    """

    def __init__(self, schema: dict | None, *, data=None, initial: Any = MISSING):
        self.schema = schema if isinstance(schema, dict) else None
        self.data = data
        self.errors: list[str] = []  # about the input as a whole
        self.root = self._build()
        self.value: Any = MISSING
        if data is not None:
            self.value = self.root.parse(data)
        else:
            self.root.bind(self.root.default() if initial is MISSING else initial)

    def _build(self) -> Field:
        if self.schema is None:
            # No schema: the task takes whatever object it is given, and nothing is required
            # (an empty box is {}). Labelled apart from the card's "Input" heading.
            return JsonField(
                name=ROOT,
                label="Any JSON object (optional)",
                schema={
                    "type": "object",
                    "description": "This task declares no input schema. Leave empty to pass {}.",
                },
            )
        field_ = build_field(
            self.schema,
            ROOT,
            root=self.schema,
            label="Input",
            required=True,
            html_required=True,
            is_root=True,
        )
        if isinstance(field_, ObjectField):
            field_.is_root = True
        return field_

    @property
    def fields(self) -> list[Field]:
        """The top-level fields to render (the root object's properties, or the root itself)."""
        if isinstance(self.root, ObjectField):
            return self.root.fields
        return [self.root]

    @property
    def input(self) -> dict:
        return {} if self.value is MISSING else self.value

    @property
    def has_required(self) -> bool:
        """Whether any field is marked required (the "* required" legend is shown only then)."""
        return any(f.required for f in self.root.walk() if f is not self.root)

    def field_errors(self) -> bool:
        return any(f.errors for f in self.root.walk())

    def is_valid(self) -> bool:
        if self.data is None:
            return False
        converted = {f.name for f in self.root.walk() if f.errors}
        value = self.input
        self.add_errors(
            [e for e in schema_errors(self.schema, value) if not _under_any(e.field, converted)],
            value,
        )
        return not self.errors and not self.field_errors()

    def add_errors(self, errors: list[FieldError], value: Any = None) -> None:
        """File errors (from jsonschema or the service) under the field they name."""
        by_name = self._by_name()
        for error in errors:
            target = _nearest(by_name, error.field)
            if (
                isinstance(target, VariantField)
                and error.rule in ("oneOf", "anyOf")
                and value is not None
            ):
                specific = target.active_errors(_value_at(value, error.field))
                if specific:
                    self.add_errors(specific)
                    continue
            message = friendly_message(error, target.schema if target is not None else {})
            if target is None or (target is self.root and not isinstance(target, JsonField)):
                self.errors.append(
                    message
                    if error.field == ROOT
                    else f"{error.field.removeprefix(ROOT + '.')}: {message}"
                )
            elif message not in target.errors:
                target.errors.append(message)

    def _by_name(self) -> dict[str, Field]:
        # A variant and its chosen object share a name; the variant (the outer one) wins.
        by_name: dict[str, Field] = {}
        for f in self.root.walk():
            by_name.setdefault(f.name, f)
        return by_name

    def apply_action(self, action: str) -> bool:
        """Handle an "add:<array>" / "remove:<array>.<i>" button. True if it was one."""
        verb, _, target = action.partition(":")
        by_name = self._by_name()
        if verb == "add" and isinstance(by_name.get(target), ArrayField):
            by_name[target].add_row()
            return True
        if verb == "remove":
            array_name, _, index = target.rpartition(".")
            if isinstance(by_name.get(array_name), ArrayField) and index.isdigit():
                by_name[array_name].remove_row(int(index), self.data)
                return True
        return verb == "refresh"


def _under_any(path: str, names: set[str]) -> bool:
    return any(path == n or path.startswith(n + ".") for n in names)


def _nearest(by_name: dict[str, Field], path: str) -> Field | None:
    while path:
        if path in by_name:
            return by_name[path]
        if "." not in path:
            return None
        path = path.rsplit(".", 1)[0]
    return None


def _value_at(value: Any, path: str) -> Any:
    for part in path.split(".")[1:]:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def friendly_message(error: FieldError, schema: dict) -> str:
    """A jsonschema error as a sentence a person filling in the form understands."""
    rule, s = error.rule, schema or {}
    plural = "character" if s.get(rule) == 1 else "characters"
    items = "item" if s.get(rule) == 1 else "items"
    known = {
        "minLength": lambda: f"Must be at least {s['minLength']} {plural}.",
        "maxLength": lambda: f"Must be at most {s['maxLength']} {plural}.",
        "minimum": lambda: f"Must be at least {_fmt_number(s['minimum'])}.",
        "maximum": lambda: f"Must be at most {_fmt_number(s['maximum'])}.",
        "exclusiveMinimum": lambda: f"Must be more than {_fmt_number(s['exclusiveMinimum'])}.",
        "exclusiveMaximum": lambda: f"Must be less than {_fmt_number(s['exclusiveMaximum'])}.",
        "multipleOf": lambda: f"Must be a multiple of {_fmt_number(s['multipleOf'])}.",
        "pattern": lambda: f"Must match the pattern {s['pattern']}.",
        "format": lambda: f"Enter a valid {s['format'].replace('-', ' ')}.",
        "enum": lambda: "Select one of the options.",
        "minItems": lambda: f"Add at least {s['minItems']} {items}.",
        "maxItems": lambda: f"Use at most {s['maxItems']} {items}.",
        "uniqueItems": lambda: "Items must not repeat.",
    }
    if rule in known:
        try:
            return known[rule]()
        except (KeyError, TypeError, AttributeError):
            pass
    return _sentence(error.message)


def _sentence(message: str) -> str:
    message = message.strip()
    if message == "is required":
        return "This field is required."
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
