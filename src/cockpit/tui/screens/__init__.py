"""Modal screens: questions the cockpit asks before it acts."""
