//! The catalog views and DMVs of a simulated server, built from the world.
