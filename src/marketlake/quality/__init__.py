"""Data quality: validation rules for bars and corporate actions, quarantine rows, completeness."""
