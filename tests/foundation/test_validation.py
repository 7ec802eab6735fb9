"""Input validation: errors that name the field and the rule, and defaults from the schema."""

from __future__ import annotations

import copy

from runs.validation import apply_defaults, schema_errors

CUSTOMER = {
    "type": "object",
    "required": ["company", "email"],
    "properties": {
        "company": {"type": "string", "minLength": 2},
        "email": {"type": "string", "format": "email"},
        "seats": {"type": "integer", "minimum": 1, "maximum": 500, "default": 5},
        "plan": {"enum": ["free", "team", "pro"], "default": "team"},
        "start_date": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []},
        "address": {
            "type": "object",
            "required": ["country"],
            "properties": {
                "city": {"type": "string"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "zone": {"type": "string", "default": "EU"},
            },
        },
    },
    "additionalProperties": False,
}


def fields_and_rules(errors) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in errors]


def test_it_accepts_valid_input():
    data = {"company": "Acme", "email": "ops@acme.test", "address": {"country": "DE"}}

    assert schema_errors(CUSTOMER, data) == []


def test_it_accepts_anything_without_a_schema():
    assert schema_errors(None, {"whatever": 1}) == []
    assert schema_errors({}, {"whatever": 1}) == []


def test_it_points_a_missing_required_field_at_the_field_itself():
    errors = schema_errors(CUSTOMER, {"company": "Acme"})

    assert fields_and_rules(errors) == [("input.email", "required")]
    assert errors[0].message == "is required"
    assert str(errors[0]) == "input.email: is required"


def test_it_names_nested_fields_by_their_path():
    errors = schema_errors(
        CUSTOMER, {"company": "Acme", "email": "ops@acme.test", "address": {"country": "germany"}}
    )

    assert fields_and_rules(errors) == [("input.address.country", "pattern")]


def test_it_names_a_missing_nested_field():
    errors = schema_errors(CUSTOMER, {"company": "Acme", "email": "ops@acme.test", "address": {}})

    assert fields_and_rules(errors) == [("input.address.country", "required")]


def test_it_names_array_items_by_their_index():
    errors = schema_errors(
        CUSTOMER, {"company": "Acme", "email": "ops@acme.test", "tags": ["vip", "", 3]}
    )

    assert fields_and_rules(errors) == [("input.tags.1", "minLength"), ("input.tags.2", "type")]


def test_it_reports_every_problem_sorted_by_field():
    errors = schema_errors(
        CUSTOMER,
        {"company": "A", "email": "not-an-email", "seats": 0, "plan": "gold"},
    )

    assert fields_and_rules(errors) == [
        ("input.company", "minLength"),
        ("input.email", "format"),
        ("input.plan", "enum"),
        ("input.seats", "minimum"),
    ]


def test_it_checks_formats():
    errors = schema_errors(
        CUSTOMER, {"company": "Acme", "email": "ops@acme.test", "start_date": "31/12/2025"}
    )

    assert fields_and_rules(errors) == [("input.start_date", "format")]


def test_it_explains_unknown_fields_at_the_object():
    errors = schema_errors(CUSTOMER, {"company": "Acme", "email": "ops@acme.test", "sets": 3})

    assert fields_and_rules(errors) == [("input", "additionalProperties")]
    assert "unknown field(s) not allowed" in errors[0].message
    assert "'sets'" in errors[0].message


def test_it_names_the_root_when_the_input_is_not_an_object():
    errors = schema_errors(CUSTOMER, ["Acme"])

    assert fields_and_rules(errors) == [("input", "type")]


def test_it_uses_the_prefix_it_is_given():
    errors = schema_errors({"type": "object", "required": ["synced"]}, {}, prefix="output")

    assert fields_and_rules(errors) == [("output.synced", "required")]


def test_it_names_a_required_field_whose_name_has_a_quote():
    errors = schema_errors({"type": "object", "required": ["it's"]}, {})

    assert fields_and_rules(errors) == [("input.it's", "required")]


def test_it_fills_in_defaults_of_missing_fields():
    filled = apply_defaults(CUSTOMER, {"company": "Acme", "plan": "pro"})

    assert filled == {"company": "Acme", "plan": "pro", "seats": 5, "tags": []}


def test_it_fills_in_nested_defaults_of_a_given_object():
    filled = apply_defaults(CUSTOMER, {"address": {"country": "DE"}})

    assert filled["address"] == {"country": "DE", "zone": "EU"}


def test_it_fills_in_nested_defaults_of_an_object_that_came_from_its_default():
    schema = {
        "type": "object",
        "properties": {
            "retry": {
                "type": "object",
                "default": {},
                "properties": {"attempts": {"type": "integer", "default": 3}},
            }
        },
    }

    assert apply_defaults(schema, {}) == {"retry": {"attempts": 3}}


def test_it_keeps_values_given_even_when_falsy():
    filled = apply_defaults(CUSTOMER, {"seats": 0, "tags": None, "plan": ""})

    assert (filled["seats"], filled["tags"], filled["plan"]) == (0, None, "")


def test_it_does_not_touch_the_input_or_the_schema():
    data = {"address": {"country": "DE"}}
    data_before, schema_before = copy.deepcopy(data), copy.deepcopy(CUSTOMER)

    filled = apply_defaults(CUSTOMER, data)
    filled["tags"].append("changed")
    filled["address"]["zone"] = "US"

    assert data == data_before
    assert CUSTOMER == schema_before


def test_it_leaves_input_alone_without_a_schema_or_when_it_is_not_an_object():
    assert apply_defaults(None, {"a": 1}) == {"a": 1}
    assert apply_defaults(CUSTOMER, ["a"]) == ["a"]
