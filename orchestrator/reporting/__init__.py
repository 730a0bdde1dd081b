"""Reports: built from the journal alone, so a report can be (re)written from any machine holding it."""
