//! The crate links and reports its version.
#[test]
fn version_is_set() {
    assert!(!milink_core::VERSION.is_empty());
}
