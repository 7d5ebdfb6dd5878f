//! PostgreSQL engine (placeholder while the engine is written).
