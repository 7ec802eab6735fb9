"""Dashboard views, one module per area. Plain function views; access checks in permissions."""
