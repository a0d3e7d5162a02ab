"""The full-screen cockpit (Textual). Widgets do no I/O: the app sets their attributes."""
