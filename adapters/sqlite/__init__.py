"""SQLite adapters (the embedded default): migrations, the views' store, read-side queries."""
