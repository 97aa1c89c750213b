//! The database mirroring endpoint on SQL Server (milink-facts §1.5): certificate
//! authentication, AES encryption, started, listening on all addresses.

use serde::{Deserialize, Serialize};

use crate::names::{CertificateName, EndpointName, TcpPort};

use super::{Batch, SqlIdentifier};

/// How the endpoint authenticates connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum EndpointAuth {
    /// `CERTIFICATE [cert]`: certificate only (what the link needs).
    #[default]
    Certificate,
    /// `WINDOWS NEGOTIATE CERTIFICATE [cert]`: keeps Windows authentication for existing
    /// availability groups and adds the certificate for the link.
    WindowsNegotiateCertificate,
}

impl EndpointAuth {
    fn keywords(self) -> &'static str {
        match self {
            EndpointAuth::Certificate => "CERTIFICATE",
            EndpointAuth::WindowsNegotiateCertificate => "WINDOWS NEGOTIATE CERTIFICATE",
        }
    }
}

/// The encryption algorithms the endpoint accepts; both include AES, which the link needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum EndpointEncryption {
    /// `ALGORITHM AES`.
    #[default]
    Aes,
    /// `ALGORITHM AES RC4`, for an existing endpoint whose other partners still need RC4.
    AesRc4,
}

impl EndpointEncryption {
    fn keywords(self) -> &'static str {
        match self {
            EndpointEncryption::Aes => "AES",
            EndpointEncryption::AesRc4 => "AES RC4",
        }
    }
}

/// The database mirroring endpoint milink creates or alters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MirroringEndpointSpec {
    /// The endpoint name (`database_mirroring_endpoint` by the docs' convention, or the name
    /// of an existing endpoint to alter).
    pub name: EndpointName,
    /// The listener port (5022 for a default instance; each instance on a host needs its own).
    pub port: TcpPort,
    /// The SQL Server endpoint certificate.
    pub certificate: CertificateName,
    /// Authentication mode.
    pub auth: EndpointAuth,
    /// Encryption algorithms.
    pub encryption: EndpointEncryption,
}

/// The part after `CREATE ENDPOINT [name]` / `ALTER ENDPOINT [name]`, each line indented by
/// `indent`.
fn endpoint_body(spec: &MirroringEndpointSpec, indent: &str) -> String {
    let lines = [
        "STATE = STARTED".to_owned(),
        format!(
            "AS TCP (LISTENER_PORT = {}, LISTENER_IP = ALL)",
            spec.port.get()
        ),
        "FOR DATABASE_MIRRORING (".to_owned(),
        "    ROLE = ALL,".to_owned(),
        format!(
            "    AUTHENTICATION = {} {},",
            spec.auth.keywords(),
            spec.certificate.quoted()
        ),
        format!(
            "    ENCRYPTION = REQUIRED ALGORITHM {});",
            spec.encryption.keywords()
        ),
    ];
    let mut out = String::new();
    for line in lines {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Creates the database mirroring endpoint unless an endpoint of that name exists.
///
/// The guard is by name. SQL Server allows one database mirroring endpoint per instance: when
/// one exists under another name, this batch fails (error 7862) rather than silently leaving
/// an endpoint the link may not be able to use; alter that one with
/// [`alter_mirroring_endpoint`] instead.
pub fn create_mirroring_endpoint(spec: &MirroringEndpointSpec) -> Batch {
    Batch::new(
        "create the database mirroring endpoint",
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.database_mirroring_endpoints WHERE name = {literal})\n    \
             CREATE ENDPOINT {ident}\n{body}",
            literal = spec.name.literal(),
            ident = spec.name.quoted(),
            body = endpoint_body(spec, "        "),
        ),
    )
}

/// Alters an existing database mirroring endpoint to the link's requirements (started,
/// certificate authentication, AES). Running it again changes nothing.
pub fn alter_mirroring_endpoint(spec: &MirroringEndpointSpec) -> Batch {
    Batch::new(
        "alter the database mirroring endpoint",
        format!(
            "USE master;\n\
             ALTER ENDPOINT {ident}\n{body}",
            ident = spec.name.quoted(),
            body = endpoint_body(spec, "    "),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(auth: EndpointAuth, encryption: EndpointEncryption) -> MirroringEndpointSpec {
        MirroringEndpointSpec {
            name: EndpointName::new("database_mirroring_endpoint").unwrap(),
            port: TcpPort::MIRRORING_DEFAULT,
            certificate: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            auth,
            encryption,
        }
    }

    #[test]
    fn create_endpoint() {
        let batch =
            create_mirroring_endpoint(&spec(EndpointAuth::Certificate, EndpointEncryption::Aes));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn alter_endpoint_windows_negotiate_certificate() {
        let mut s = spec(
            EndpointAuth::WindowsNegotiateCertificate,
            EndpointEncryption::AesRc4,
        );
        s.name = EndpointName::new("Hadr_endpoint").unwrap();
        s.port = TcpPort::new(5023).unwrap();
        let batch = alter_mirroring_endpoint(&s);
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_endpoint_hostile_names() {
        let mut s = spec(EndpointAuth::Certificate, EndpointEncryption::Aes);
        s.name = EndpointName::new("ep]'; --").unwrap();
        s.certificate = CertificateName::new("Cert]]x").unwrap();
        let batch = create_mirroring_endpoint(&s);
        insta::assert_snapshot!(batch.display_sql());
    }
}
