"""Core: pure rules and mechanisms (sealing primitives, routing, the workflow, file cleaning).

No Flask, no database: everything here is a function of its arguments."""
