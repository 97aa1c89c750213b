//! The properties the fuzz targets check: the same module the property tests in
//! `milink-core/tests/fuzz_properties.rs` run on stable.

#[path = "../../milink-core/tests/properties/mod.rs"]
pub mod properties;
