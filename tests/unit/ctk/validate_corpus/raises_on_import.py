"""A provider/control module that fails when imported: chaoslib imports it while validating."""

raise RuntimeError("this module refuses to be imported")
