"""Onboard a customer: an example of a rich input_schema (the dashboard builds its form)."""

from runs.definitions import task

INPUT_SCHEMA = {
    "type": "object",
    "title": "New customer",
    "required": ["company", "email", "plan", "start_date"],
    "properties": {
        "company": {"type": "string", "title": "Company name", "minLength": 2, "maxLength": 80},
        "email": {"type": "string", "format": "email", "title": "Billing email"},
        "plan": {
            "type": "string",
            "title": "Plan",
            "enum": ["free", "team", "pro", "enterprise"],
            "default": "team",
        },
        "seats": {
            "type": "integer",
            "title": "Seats",
            "minimum": 1,
            "maximum": 500,
            "default": 5,
            "description": "How many people will sign in",
        },
        "start_date": {"type": "string", "format": "date", "title": "Start date"},
        "send_welcome_email": {"type": "boolean", "title": "Send welcome email", "default": True},
        "tags": {
            "type": "array",
            "title": "Tags",
            "items": {"type": "string", "minLength": 1},
            "maxItems": 10,
            "default": [],
        },
        "address": {
            "type": "object",
            "title": "Address",
            "required": ["country"],
            "properties": {
                "street": {"type": "string", "title": "Street"},
                "city": {"type": "string", "title": "City"},
                "country": {
                    "type": "string",
                    "title": "Country code",
                    "pattern": "^[A-Z]{2}$",
                    "description": "Two capital letters, e.g. DE",
                },
            },
        },
        "notes": {"type": "string", "title": "Notes", "format": "textarea", "maxLength": 2000},
    },
    "additionalProperties": False,
}


@task(
    name="Onboard customer",
    description="Create the account, seats and welcome email for a new customer",
    input_schema=INPUT_SCHEMA,
    output_schema={"type": "object", "required": ["account_id"]},
)
def run(ctx):
    customer = ctx.input
    print(f"creating account for {customer['company']} on the {customer['plan']} plan")
    print(f"reserving {customer.get('seats', 5)} seats from {customer['start_date']}")
    if customer.get("send_welcome_email", True):
        print(f"sending welcome email to {customer['email']}")
    ctx.emit("customer.onboarded", {"company": customer["company"], "plan": customer["plan"]})
    slug = "".join(ch for ch in customer["company"].lower() if ch.isalnum())[:12]
    return {
        "account_id": f"acct_{slug}",
        "seats": customer.get("seats", 5),
        "tags": customer.get("tags", []),
    }
