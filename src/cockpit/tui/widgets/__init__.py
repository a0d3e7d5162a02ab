"""The cockpit's panes; each shows part of a Snapshot the app hands it."""
