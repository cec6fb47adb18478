"""Files ``torch-compat-matrix init`` writes into a user's repository (data, not code)."""
