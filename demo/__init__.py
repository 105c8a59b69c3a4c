"""The embedded-stack demo: its story, its stack launcher and its data generator (not installed)."""
