"""Who may see what: access rules (`rules.py`, pure) and their database queries
(`queries.py`)."""
