//! Inputs of the T-SQL builder benchmarks: hostile names and the rendering context.

use milink_core::Secret;
use milink_core::names::{CertificateName, SYSNAME_MAX};
use milink_core::sqlserver::RenderContext;

use crate::{WorkloadError, ctx};

/// Names a caller may hand over, from plain to worst case, each a valid `sysname`:
/// `(label, name)`.
pub fn hostile_names() -> Vec<(&'static str, String)> {
    vec![
        ("plain", "ToyStore".to_owned()),
        (
            "injection",
            "Toy]Store'; DROP DATABASE [master]; --".to_owned(),
        ),
        ("unicode", "Données_Ünïcode_数据库_🚀".to_owned()),
        // Every character needs doubling in one of the two quotings, at the longest length.
        ("worst_128", "]'".repeat(SYSNAME_MAX / 2)),
    ]
}

/// A rendering context with a master key password and the two Azure root CAs (DER bytes of
/// realistic size: about 1.4 KB and 0.9 KB).
pub fn render_context() -> Result<RenderContext, WorkloadError> {
    Ok(RenderContext {
        master_key_password: Secret::new("Str0ng!Passw0rd-for-the-master-key"),
        root_cas: vec![
            (
                ctx("certificate name", CertificateName::new("MicrosoftPKI"))?,
                pattern_bytes(1_452, 0x30),
            ),
            (
                ctx("certificate name", CertificateName::new("DigiCertPKI"))?,
                pattern_bytes(914, 0x31),
            ),
        ],
    })
}

fn pattern_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::names::DatabaseName;
    use milink_core::tsql::SqlIdentifier;

    #[test]
    fn every_hostile_name_is_a_valid_database_name_and_quotes_safely() {
        for (label, name) in hostile_names() {
            let db = DatabaseName::new(name.clone()).unwrap_or_else(|e| panic!("{label}: {e}"));
            let quoted = db.quoted();
            assert_eq!(quoted.len(), name.len() + 2 + name.matches(']').count());
            let literal = db.literal();
            assert_eq!(literal.len(), name.len() + 3 + name.matches('\'').count());
        }
    }

    #[test]
    fn the_worst_case_name_is_as_long_as_sysname_allows() {
        let (_, worst) = hostile_names().pop().unwrap();
        assert_eq!(worst.encode_utf16().count(), SYSNAME_MAX);
        assert!(DatabaseName::new(format!("{worst}x")).is_err());
    }
}
