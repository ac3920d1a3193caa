"""Domain: what happens to a concern and to the people around it (intake, casework, accounts, notices, imports)."""
