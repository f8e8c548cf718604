"""PostgreSQL adapters: migrations, the views' store and their read-side queries."""
