"""The schema-to-form generator: every keyword the launch form supports, and typed values back."""

from __future__ import annotations

from django.http import QueryDict

from studio.dashboard.schema_form import (
    MISSING,
    ArrayField,
    BooleanField,
    ChoiceField,
    ConstField,
    JsonField,
    MultiChoiceField,
    NumberField,
    ObjectField,
    SchemaForm,
    TextField,
    VariantField,
    html_pattern,
)


def obj(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, **extra}


def field_of(prop: dict, *, required: bool = False) -> object:
    form = SchemaForm(obj({"x": prop}, required=["x"] if required else []))
    return form.fields[0]


def post(schema: dict, data: dict) -> SchemaForm:
    q = QueryDict(mutable=True)
    for key, value in data.items():
        if isinstance(value, list):
            q.setlist(key, value)
        else:
            q[key] = value
    return SchemaForm(schema, data=q)


# --- types ------------------------------------------------------------------------------------


def test_types_map_to_widgets():
    assert isinstance(field_of({"type": "string"}), TextField)
    assert isinstance(field_of({"type": "integer"}), NumberField)
    assert field_of({"type": "integer"}).integer is True
    assert field_of({"type": "number"}).integer is False
    assert isinstance(field_of({"type": "boolean"}), BooleanField)
    assert isinstance(field_of({"type": "array", "items": {"type": "string"}}), ArrayField)
    assert isinstance(field_of(obj({"a": {"type": "string"}})), ObjectField)


def test_values_come_back_typed():
    schema = obj(
        {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "off": {"type": "boolean"},
            "empty": {"type": "string"},
            "whole": {"type": "number"},
        }
    )
    form = post(
        schema,
        {
            "input.s": "hi",
            "input.i": "42",
            "input.n": "2.5",
            "input.b": "on",
            "input.empty": "",
            "input.whole": "3",
        },
    )
    assert form.value == {"s": "hi", "i": 42, "n": 2.5, "b": True, "off": False, "whole": 3}
    assert form.is_valid()


def test_a_number_field_rejects_text_with_a_field_error():
    form = post(
        obj({"i": {"type": "integer"}, "n": {"type": "number"}}),
        {"input.i": "1.5", "input.n": "abc"},
    )
    assert not form.is_valid()
    assert form.fields[0].errors == ["Enter a whole number."]
    assert form.fields[1].errors == ["Enter a number."]
    assert form.fields[0].raw == "1.5"  # kept as typed


# --- title, description, default, required --------------------------------------------------


def test_title_description_default_required():
    form = SchemaForm(
        obj(
            {
                "seats": {
                    "type": "integer",
                    "title": "Seats",
                    "description": "How many",
                    "default": 5,
                },
                "plain_name": {"type": "string"},
            },
            required=["seats"],
        )
    )
    seats, plain = form.fields
    assert seats.label == "Seats" and seats.help == "How many" and seats.raw == "5"
    assert seats.required and seats.html_required
    assert plain.label == "Plain name" and not plain.required


def test_required_missing_is_reported_on_the_field():
    form = post(obj({"name": {"type": "string"}}, required=["name"]), {"input.name": ""})
    assert not form.is_valid()
    assert form.fields[0].errors == ["This field is required."]


def test_required_inside_an_optional_object_is_not_forced_by_the_browser():
    schema = obj({"address": obj({"country": {"type": "string"}}, required=["country"])})
    country = SchemaForm(schema).fields[0].fields[0]
    assert country.required and not country.html_required
    assert post(schema, {"input.address.country": ""}).value == {}  # empty optional object left out
    form = post(schema, {"input.address.country": "DE"})
    assert form.value == {"address": {"country": "DE"}}


# --- enum, const ------------------------------------------------------------------------------


def test_enum_is_radios_when_short_and_a_select_when_long():
    short = field_of({"type": "string", "enum": ["a", "b", "c"]})
    long = field_of({"type": "string", "enum": list("abcdefg")})
    assert isinstance(short, ChoiceField) and short.as_radios
    assert not long.as_radios
    assert long.choices[0] == ("a", "a")


def test_enum_of_numbers_comes_back_as_numbers():
    schema = obj({"level": {"type": "integer", "enum": [1, 2, 3]}})
    assert post(schema, {"input.level": "2"}).value == {"level": 2}
    form = post(schema, {"input.level": "9"})
    assert not form.is_valid() and form.fields[0].errors == ["Select one of the options."]


def test_const_is_shown_and_always_sent():
    schema = obj({"kind": {"const": "invoice"}, "n": {"type": "integer"}})
    assert isinstance(SchemaForm(schema).fields[0], ConstField)
    assert post(schema, {"input.n": "1"}).value == {"kind": "invoice", "n": 1}


# --- numbers ----------------------------------------------------------------------------------


def test_number_bounds_become_browser_attributes():
    f = field_of({"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 1})
    assert f.attrs == {"step": "1", "min": "1", "max": "10"}
    f = field_of({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10})
    assert f.attrs["min"] == "1" and f.attrs["max"] == "9"
    f = field_of({"type": "number", "exclusiveMinimum": 0.5, "multipleOf": 0.25})
    assert f.attrs["min"] == "0.5" and f.attrs["step"] == "0.25"
    assert "more than 0.5" in f.hints[0]


def test_number_bounds_are_enforced_on_the_server():
    schema = obj(
        {
            "n": {"type": "number", "exclusiveMinimum": 0, "maximum": 10, "multipleOf": 0.5},
            "m": {"type": "integer", "minimum": 5, "exclusiveMaximum": 8},
        }
    )
    form = post(schema, {"input.n": "0", "input.m": "8"})
    assert not form.is_valid()
    assert form.fields[0].errors == ["Must be more than 0."]
    assert form.fields[1].errors == ["Must be less than 8."]
    form = post(schema, {"input.n": "0.3", "input.m": "4"})
    form.is_valid()
    assert form.fields[0].errors == ["Must be a multiple of 0.5."]
    assert form.fields[1].errors == ["Must be at least 5."]
    form = post(schema, {"input.n": "11", "input.m": "6"})
    form.is_valid()
    assert form.fields[0].errors == ["Must be at most 10."]


# --- strings ----------------------------------------------------------------------------------


def test_string_length_and_pattern():
    f = field_of({"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[A-Z]+$"})
    assert f.attrs == {"minlength": 2, "maxlength": 5, "pattern": "[A-Z]+"}
    schema = obj(
        {"code": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[A-Z]+$"}}
    )
    form = post(schema, {"input.code": "abcdefg"})
    assert not form.is_valid()
    assert "Must be at most 5 characters." in form.fields[0].errors
    assert "Must match the pattern ^[A-Z]+$." in form.fields[0].errors


def test_unanchored_patterns_match_anywhere_in_the_browser_too():
    assert html_pattern("^abc$") == "abc"
    assert html_pattern("abc") == "(?:.*(?:abc)).*"
    assert html_pattern("^abc") == "(?:abc).*"
    assert html_pattern("([") is None


def test_formats():
    types = {
        fmt: field_of({"type": "string", "format": fmt}).input_type
        for fmt in ("date", "date-time", "time", "email", "uri", "password", "uuid")
    }
    assert types == {
        "date": "date",
        "date-time": "datetime-local",
        "time": "time",
        "email": "email",
        "uri": "url",
        "password": "password",
        "uuid": "text",
    }
    assert "pattern" in field_of({"type": "string", "format": "uuid"}).attrs


def test_datetime_and_time_values_are_converted():
    schema = obj(
        {"at": {"type": "string", "format": "date-time"}, "t": {"type": "string", "format": "time"}}
    )
    form = post(schema, {"input.at": "2025-03-01T09:30", "input.t": "07:15"})
    assert form.value == {"at": "2025-03-01T09:30:00Z", "t": "07:15:00"}
    shown = SchemaForm(schema, initial={"at": "2025-03-01T10:30:00+01:00"})
    assert shown.fields[0].raw == "2025-03-01T09:30:00"


def test_email_format_is_checked_on_the_server():
    form = post(obj({"e": {"type": "string", "format": "email"}}), {"input.e": "nope"})
    assert not form.is_valid() and form.fields[0].errors == ["Enter a valid email."]


def test_long_text_gets_a_textarea():
    assert field_of({"type": "string", "format": "textarea"}).multiline
    assert field_of({"type": "string", "maxLength": 5000}).multiline
    assert not field_of({"type": "string", "maxLength": 50}).multiline


# --- arrays -----------------------------------------------------------------------------------


def test_array_of_primitives_rows_add_and_remove():
    schema = obj({"tags": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}})
    form = post(
        schema,
        {"input.tags.__len": "3", "input.tags.0": "1", "input.tags.1": "", "input.tags.2": "3"},
    )
    assert form.value == {"tags": [1, 3]}
    tags = form.fields[0]
    assert not tags.can_add
    form.apply_action("remove:input.tags.0")
    assert [r.raw for r in tags.rows] == ["", "3"]
    assert [r.name for r in tags.rows] == ["input.tags.0", "input.tags.1"]
    form.apply_action("add:input.tags")
    assert len(tags.rows) == 3


def test_array_limits_are_validated():
    schema = obj(
        {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True}}
    )
    form = post(schema, {"input.tags.__len": "2", "input.tags.0": "a", "input.tags.1": "a"})
    assert not form.is_valid() and form.fields[0].errors == ["Items must not repeat."]
    assert len(SchemaForm(schema).fields[0].rows) == 2  # minItems rows to start with


def test_item_errors_land_on_the_row():
    schema = obj({"tags": {"type": "array", "items": {"type": "string", "minLength": 3}}})
    form = post(schema, {"input.tags.__len": "2", "input.tags.0": "okay", "input.tags.1": "no"})
    assert not form.is_valid()
    assert form.fields[0].rows[1].errors == ["Must be at least 3 characters."]


def test_array_of_enum_is_a_multi_select():
    schema = obj({"days": {"type": "array", "items": {"enum": ["mon", "tue", "wed"]}}})
    days = SchemaForm(schema).fields[0]
    assert isinstance(days, MultiChoiceField)
    assert post(schema, {"input.days": ["tue", "mon"]}).value == {"days": ["mon", "tue"]}
    assert post(schema, {}).value == {}


def test_array_of_objects():
    schema = obj(
        {
            "people": {
                "type": "array",
                "items": obj(
                    {"name": {"type": "string"}, "age": {"type": "integer"}}, required=["name"]
                ),
            }
        }
    )
    form = post(
        schema,
        {
            "input.people.__len": "2",
            "input.people.0.name": "Ann",
            "input.people.0.age": "31",
            "input.people.1.name": "",
            "input.people.1.age": "4",
        },
    )
    assert form.value == {"people": [{"name": "Ann", "age": 31}, {"age": 4}]}
    assert not form.is_valid()
    assert form.fields[0].rows[1].fields[0].errors == ["This field is required."]
    shown = SchemaForm(schema, initial={"people": [{"name": "Bo"}]})
    assert shown.fields[0].rows[0].fields[0].raw == "Bo"


# --- objects, variants, nullable, $ref --------------------------------------------------------


def test_nested_objects_recurse():
    schema = obj({"a": obj({"b": obj({"c": {"type": "integer"}})})})
    form = post(schema, {"input.a.b.c": "7"})
    assert form.value == {"a": {"b": {"c": 7}}}
    assert form.fields[0].fields[0].fields[0].name == "input.a.b.c"


def test_one_of_objects_pick_a_variant_then_its_fields():
    schema = obj(
        {
            "payment": {
                "oneOf": [
                    obj(
                        {"kind": {"const": "card"}, "number": {"type": "string", "minLength": 12}},
                        required=["number"],
                        title="Card",
                    ),
                    obj({"kind": {"const": "iban"}, "iban": {"type": "string"}}, required=["iban"]),
                ]
            }
        },
        required=["payment"],
    )
    payment = SchemaForm(schema).fields[0]
    assert isinstance(payment, VariantField)
    assert [label for _, label, _ in payment.choices] == ["Card", "Kind: iban"]
    form = post(schema, {"input.payment.__variant": "1", "input.payment.iban": "DE89"})
    assert form.value == {"payment": {"kind": "iban", "iban": "DE89"}}
    assert form.is_valid()
    form = post(schema, {"input.payment.__variant": "0", "input.payment.number": "123"})
    assert not form.is_valid()
    assert form.fields[0].variants[0].fields[1].errors == ["Must be at least 12 characters."]
    shown = SchemaForm(schema, initial={"payment": {"kind": "iban", "iban": "X"}})
    assert shown.fields[0].active == 1


def test_any_of_objects_work_like_one_of():
    schema = obj(
        {
            "target": {
                "anyOf": [
                    obj({"url": {"type": "string", "format": "uri"}}),
                    obj({"path": {"type": "string"}}),
                ]
            }
        }
    )
    assert isinstance(SchemaForm(schema).fields[0], VariantField)
    assert post(schema, {"input.target.__variant": "1", "input.target.path": "/tmp"}).value == {
        "target": {"path": "/tmp"}
    }


def test_nullable_types():
    schema = obj(
        {
            "note": {"type": ["string", "null"]},
            "count": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "flag": {"type": ["boolean", "null"]},
            "must": {"type": ["string", "null"]},
        },
        required=["must"],
    )
    note, count, flag, must = SchemaForm(schema).fields
    assert isinstance(note, TextField) and note.nullable
    assert isinstance(count, NumberField) and count.nullable
    assert isinstance(flag, ChoiceField) and flag.allow_blank  # yes / no / unset
    assert not must.html_required
    form = post(
        schema, {"input.note": "", "input.count": "", "input.flag": "false", "input.must": ""}
    )
    assert form.value == {"flag": False, "must": None}
    assert form.is_valid()


def test_local_refs_and_defs():
    schema = {
        "type": "object",
        "$defs": {
            "money": obj({"amount": {"type": "number"}, "currency": {"$ref": "#/$defs/currency"}}),
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
        },
        "properties": {"price": {"$ref": "#/$defs/money", "title": "Price"}},
    }
    price = SchemaForm(schema).fields[0]
    assert isinstance(price, ObjectField) and price.label == "Price"
    assert isinstance(price.fields[1], ChoiceField)
    assert post(schema, {"input.price.amount": "9.5", "input.price.currency": "EUR"}).value == {
        "price": {"amount": 9.5, "currency": "EUR"}
    }


def test_recursive_refs_fall_back_to_json_instead_of_looping():
    schema = {
        "type": "object",
        "$defs": {"node": obj({"child": {"$ref": "#/$defs/node"}})},
        "properties": {"tree": {"$ref": "#/$defs/node"}},
    }
    fields = list(SchemaForm(schema).root.walk())
    assert any(isinstance(f, JsonField) for f in fields)


# --- the JSON fallback ------------------------------------------------------------------------


def test_what_cannot_be_expressed_becomes_a_json_editor():
    for prop in (
        {"type": ["string", "integer"]},
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        {"allOf": [{"type": "string"}, {"minLength": 2}]},
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"$ref": "https://example.com/remote.json"},
        {},
    ):
        assert isinstance(field_of(prop), JsonField), prop


def test_json_editor_parses_and_reports_bad_json():
    schema = obj({"extra": {"type": "object", "additionalProperties": {"type": "integer"}}})
    assert post(schema, {"input.extra": '{"a": 1}'}).value == {"extra": {"a": 1}}
    form = post(schema, {"input.extra": "{oops"})
    assert not form.is_valid() and form.fields[0].errors[0].startswith("Not valid JSON")
    form = post(schema, {"input.extra": '{"a": "x"}'})
    assert not form.is_valid() and form.fields[0].errors  # deeper errors land on the editor


def test_no_schema_is_a_json_editor_for_the_whole_input():
    form = SchemaForm(None)
    assert isinstance(form.root, JsonField)
    assert post(None, {"input": '{"a": 1}'}).value == {"a": 1}


def test_root_errors_are_form_errors():
    schema = obj({"a": {"type": "string"}}, additionalProperties=False, minProperties=1)
    form = post(schema, {"input.a": ""})
    assert not form.is_valid()
    assert form.errors and form.value == {}


def test_missing_is_falsy_and_distinct():
    assert not MISSING and MISSING is not None
