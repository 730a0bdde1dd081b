"""Running a drill: preflight, suspend, inject, respond, restore, report — an explicit state machine."""
