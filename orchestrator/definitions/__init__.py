"""Drill definitions: the typed models of a drill file and the loader that turns YAML into them."""
