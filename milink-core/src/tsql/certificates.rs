//! Certificates and trust on SQL Server: the database master key, the endpoint certificate,
//! its public key, the managed instance's certificate and the Azure root CAs (milink-facts §1.3,
//! §1.4).
//!
//! Every statement that creates something is guarded, so running a batch twice succeeds.

use crate::names::CertificateName;
use crate::secret::Secret;
use crate::time::Date;

use super::{Batch, SqlIdentifier, binary_literal, quote_nstring};

/// The DNS pattern SQL Server must trust the Azure root CAs for (`sp_certificate_add_issuer`).
pub const AZURE_DNS_PATTERN: &str = "*.database.windows.net";

/// Creates the database master key in `master` unless it exists (symmetric key id 101).
///
/// The password reaches only [`Batch::expose_sql`]; `Debug`, `Display`, `Serialize` and
/// [`Batch::display_sql`] show `N'***'` in its place.
pub fn create_master_key(password: &Secret) -> Batch {
    let shape = |literal: &str| {
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE symmetric_key_id = 101)\n    \
             CREATE MASTER KEY ENCRYPTION BY PASSWORD = {literal};\n"
        )
    };
    Batch::with_secret(
        "create the database master key in master",
        shape(&quote_nstring(password.expose())),
        shape("N'***'"),
    )
}

/// Creates the SQL Server endpoint certificate in `master` unless one of that name exists.
///
/// The subject is a Unicode literal; the expiry date is written `YYYYMMDD`, which SQL Server
/// reads the same way under every language and `DATEFORMAT` setting. The certificate is
/// encrypted by the database master key, so [`create_master_key`] runs first.
pub fn create_endpoint_certificate(name: &CertificateName, subject: &str, expiry: Date) -> Batch {
    Batch::new(
        "create the endpoint certificate",
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = {literal})\n    \
             CREATE CERTIFICATE {ident}\n        \
             WITH SUBJECT = {subject},\n             \
             EXPIRY_DATE = {expiry};\n",
            literal = name.literal(),
            ident = name.quoted(),
            subject = quote_nstring(subject),
            expiry = quote_nstring(&expiry.to_sql_unseparated()),
        ),
    )
}

/// Reads a certificate's public key (DER) from `master`.
///
/// Result: one row, one column `PublicKey` (`varbinary`, NULL when no certificate of that
/// name exists).
pub fn export_certificate_public_key(name: &CertificateName) -> Batch {
    Batch::new(
        "read the endpoint certificate's public key",
        format!(
            "USE master;\n\
             SELECT CERTENCODED(CERT_ID({literal})) AS PublicKey;\n",
            literal = name.literal(),
        ),
    )
}

/// Imports a certificate's public key (DER bytes) into `master` unless a certificate of that
/// name exists.
///
/// Used for the managed instance's endpoint certificate, which must be named exactly after
/// the managed instance's FQDN ([`crate::names::MiFqdn::certificate_name`]). The guard is by
/// name: replacing a rotated certificate means dropping the old one first.
pub fn import_certificate_from_binary(name: &CertificateName, der: &[u8]) -> Batch {
    Batch::new(
        "import a certificate's public key",
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = {literal})\n    \
             CREATE CERTIFICATE {ident} FROM BINARY = {blob};\n",
            literal = name.literal(),
            ident = name.quoted(),
            blob = binary_literal(der),
        ),
    )
}

/// Imports a root CA certificate (DER bytes) into `master` and trusts it as an issuer for
/// `dns_pattern` (normally [`AZURE_DNS_PATTERN`]).
///
/// Re-run safe in both halves: the certificate is created only if absent, and
/// `sp_certificate_add_issuer` runs every time, with the one error a re-run gives ("…has been
/// already added as a trusted issuer for DNS name…", milink-facts §1.4 e) treated as success,
/// as Microsoft's own `New-MiLink` script does. Unlike guarding both with one `IF NOT EXISTS`,
/// this also completes a first run that created the certificate but failed to add the issuer.
/// Every other error is re-raised unchanged (2812 when the procedure is missing: the build is
/// not link-capable). The message match is on the English text (UNVERIFIED for servers whose
/// session language has a translated message).
pub fn import_root_ca(name: &CertificateName, der: &[u8], dns_pattern: &str) -> Batch {
    Batch::new(
        "import a root CA and trust it for the managed instance domain",
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = {literal})\n    \
             CREATE CERTIFICATE {ident} FROM BINARY = {blob};\n\
             DECLARE @cert_id int = CERT_ID({literal});\n\
             BEGIN TRY\n    \
             EXEC sp_certificate_add_issuer @cert_id, {pattern};\n\
             END TRY\n\
             BEGIN CATCH\n    \
             IF ERROR_MESSAGE() NOT LIKE N'%already added as a trusted issuer%'\n        \
             THROW;\n\
             END CATCH;\n",
            literal = name.literal(),
            ident = name.quoted(),
            blob = binary_literal(der),
            pattern = quote_nstring(dns_pattern),
        ),
    )
}

/// The Azure root CAs SQL Server must trust for `*.database.windows.net`, by the names the
/// docs and SSMS use, with the certificate each one is.
///
/// The certificate bytes are not built in: pass the DER blobs (from the docs, the Arc
/// download or the managed instance) to [`import_root_ca`].
pub fn azure_root_cas() -> Vec<(CertificateName, &'static str)> {
    vec![
        (
            CertificateName::from_static("MicrosoftPKI"),
            "Microsoft RSA Root Certificate Authority 2017",
        ),
        (
            CertificateName::from_static("DigiCertPKI"),
            "DigiCert Global Root G2",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> CertificateName {
        CertificateName::new(name).unwrap()
    }

    #[test]
    fn master_key() {
        let password = Secret::new("Str0ng!Pa55word'");
        let batch = create_master_key(&password);
        insta::assert_snapshot!(batch.display_sql());
        assert!(batch.is_sensitive());
        assert!(
            batch
                .expose_sql()
                .contains("ENCRYPTION BY PASSWORD = N'Str0ng!Pa55word''';")
        );
    }

    #[test]
    fn master_key_password_never_leaves_through_debug_display_or_serde() {
        let password = Secret::new("Hunter2-Correct-Horse");
        let batch = create_master_key(&password);
        let debug = format!("{batch:?}");
        let display = batch.to_string();
        let json = serde_json::to_string(&batch).unwrap();
        for shown in [&debug, &display, &json, &batch.display_sql().to_owned()] {
            assert!(!shown.contains("Hunter2"), "password leaked: {shown}");
            assert!(
                shown.contains("N'***'"),
                "redaction marker missing: {shown}"
            );
        }
        assert!(batch.expose_sql().contains("N'Hunter2-Correct-Horse'"));
    }

    #[test]
    fn endpoint_certificate() {
        let name = cert("Cert_TailspinSql_endpoint");
        let batch = create_endpoint_certificate(
            &name,
            "Certificate for Cert_TailspinSql_endpoint",
            Date::new(2028, 3, 31).unwrap(),
        );
        insta::assert_snapshot!(batch.display_sql());
        assert!(batch.display_sql().contains("EXPIRY_DATE = N'20280331'"));
    }

    #[test]
    fn endpoint_certificate_hostile() {
        let name = cert("Cert]x'; DROP --");
        let batch = create_endpoint_certificate(
            &name,
            "it's /* a */ subject",
            Date::new(2030, 1, 2).unwrap(),
        );
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn export_public_key() {
        let batch = export_certificate_public_key(&cert("Cert_TailspinSql_endpoint"));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn import_mi_certificate() {
        let fqdn = crate::names::MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap();
        let batch = import_certificate_from_binary(
            &fqdn.certificate_name(),
            &[0x30, 0x82, 0x03, 0x0a, 0xff],
        );
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn import_root_ca_microsoft() {
        let (name, _) = azure_root_cas().remove(0);
        let batch = import_root_ca(&name, &[0x30, 0x82, 0x05, 0xa8], AZURE_DNS_PATTERN);
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn root_ca_names_are_valid_and_match_the_docs() {
        let cas = azure_root_cas();
        let names: Vec<&str> = cas.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["MicrosoftPKI", "DigiCertPKI"]);
        for (name, _) in &cas {
            assert_eq!(&CertificateName::new(name.as_str()).unwrap(), name);
        }
        assert_eq!(cas[0].1, "Microsoft RSA Root Certificate Authority 2017");
        assert_eq!(cas[1].1, "DigiCert Global Root G2");
    }
}
