//! The Azure root CA certificates SQL Server must trust for `*.database.windows.net`
//! (milink-facts §1.4 e), shipped in the crate as DER.
//!
//! The files in `certs/` were converted from Debian's `ca-certificates` package (version
//! 20230311+deb12u1, `/usr/share/ca-certificates/mozilla/Microsoft_RSA_Root_Certificate_Authority_2017.crt`
//! and `DigiCert_Global_Root_G2.crt`, Mozilla's root store) with
//! `openssl x509 -in <file>.crt -outform der`. Their first bytes agree with the blobs in
//! Microsoft's link scripts (`0x308205A830820390A00302010202101ED3…` and
//! `0x3082038E30820276A0030201020210033AF1E6A711A9A0BB2864B11D09FAE5…`, milink-facts §1.4 e).

use crate::names::CertificateName;

/// "Microsoft RSA Root Certificate Authority 2017" (valid 2019-12-18 to 2042-07-18), DER.
pub const MICROSOFT_RSA_ROOT_CA_2017: &[u8] =
    include_bytes!("certs/microsoft_rsa_root_ca_2017.der");

/// "DigiCert Global Root G2" (valid 2013-08-01 to 2038-01-15), DER.
pub const DIGICERT_GLOBAL_ROOT_G2: &[u8] = include_bytes!("certs/digicert_global_root_g2.der");

/// SHA-256 of [`MICROSOFT_RSA_ROOT_CA_2017`]: `openssl x509 -noout -fingerprint -sha256` of
/// the PEM file it was converted from gives the same value
/// (`C7:41:F7:0F:…:85:30:73:E0`), which is also the fingerprint Mozilla's root store lists.
pub const MICROSOFT_RSA_ROOT_CA_2017_SHA256: &str =
    "c741f70f4b2a8d88bf2e71c14122ef53ef10eba0cfa5e64cfa20f418853073e0";

/// SHA-256 of [`DIGICERT_GLOBAL_ROOT_G2`], cross-checked the same way
/// (`CB:3C:CB:B7:…:5A:B1:CB:5F`).
pub const DIGICERT_GLOBAL_ROOT_G2_SHA256: &str =
    "cb3ccbb76031e5e0138f8dd39a23f9de47ffc35e43c1144cea27d46a5ab1cb5f";

/// The Azure root CAs by the names the docs and SSMS give them in `master` (`MicrosoftPKI`,
/// `DigiCertPKI`, as [`crate::tsql::azure_root_cas`] lists them), with their DER bytes: what
/// [`super::RenderContext::root_cas`] takes.
pub fn azure_root_ca_certificates() -> Vec<(CertificateName, Vec<u8>)> {
    vec![
        (
            CertificateName::from_static("MicrosoftPKI"),
            MICROSOFT_RSA_ROOT_CA_2017.to_vec(),
        ),
        (
            CertificateName::from_static("DigiCertPKI"),
            DIGICERT_GLOBAL_ROOT_G2.to_vec(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_shipped_roots_have_their_fingerprints() {
        assert_eq!(
            hex(&Sha256::digest(MICROSOFT_RSA_ROOT_CA_2017)),
            MICROSOFT_RSA_ROOT_CA_2017_SHA256
        );
        assert_eq!(
            hex(&Sha256::digest(DIGICERT_GLOBAL_ROOT_G2)),
            DIGICERT_GLOBAL_ROOT_G2_SHA256
        );
    }

    #[test]
    fn the_roots_start_like_the_blobs_in_microsofts_scripts() {
        assert_eq!(
            hex(&MICROSOFT_RSA_ROOT_CA_2017[..17]),
            "308205a830820390a00302010202101ed3"
        );
        assert_eq!(
            hex(&DIGICERT_GLOBAL_ROOT_G2[..31]),
            "3082038e30820276a0030201020210033af1e6a711a9a0bb2864b11d09fae5"
        );
        assert_eq!(MICROSOFT_RSA_ROOT_CA_2017.len(), 1452);
        assert_eq!(DIGICERT_GLOBAL_ROOT_G2.len(), 914);
    }

    #[test]
    fn the_roots_carry_their_subjects() {
        let contains = |haystack: &[u8], needle: &str| {
            haystack
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        };
        assert!(contains(
            MICROSOFT_RSA_ROOT_CA_2017,
            "Microsoft RSA Root Certificate Authority 2017"
        ));
        assert!(contains(DIGICERT_GLOBAL_ROOT_G2, "DigiCert Global Root G2"));
    }

    #[test]
    fn names_and_bytes_pair_up() {
        let cas = azure_root_ca_certificates();
        let names: Vec<&str> = cas.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["MicrosoftPKI", "DigiCertPKI"]);
        let listed: Vec<CertificateName> = crate::tsql::azure_root_cas()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let shipped: Vec<CertificateName> = cas.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(shipped, listed);
        assert_eq!(cas[0].1, MICROSOFT_RSA_ROOT_CA_2017);
        assert_eq!(cas[1].1, DIGICERT_GLOBAL_ROOT_G2);
    }
}
