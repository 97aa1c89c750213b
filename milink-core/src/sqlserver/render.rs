//! Rendering a [`SourceOp`] to the T-SQL batches SQL Server runs, with the [`crate::tsql`]
//! builders. The SQL Server adapter calls this; the machine itself never sees T-SQL, nor the
//! secrets and certificates rendering needs.
//!
//! The two inputs that are not in the op live in a [`RenderContext`]: the database master key
//! password (a [`Secret`]: the batch shows it redacted) and the Azure root CA certificates.

use crate::names::CertificateName;
use crate::secret::Secret;
use crate::tsql::{self, Batch};

use crate::lifecycle::SourceOp;

/// What rendering needs besides the op: configuration of the SQL Server adapter.
#[derive(Debug, Clone)]
pub struct RenderContext {
    /// The password of the database master key in `master` (used only when it is created).
    pub master_key_password: Secret,
    /// The Azure root CAs SQL Server must trust for `*.database.windows.net`, by name
    /// ([`tsql::azure_root_cas`] lists the names the docs use) with their DER bytes.
    pub root_cas: Vec<(CertificateName, Vec<u8>)>,
}

impl RenderContext {
    /// A context with `master_key_password` and the Azure root CAs shipped in the crate
    /// ([`super::certs::azure_root_ca_certificates`]).
    pub fn new(master_key_password: Secret) -> Self {
        RenderContext {
            master_key_password,
            root_cas: super::certs::azure_root_ca_certificates(),
        }
    }

    /// A context with the user's master key password when `given` (checked against SQL
    /// Server's password policy), else a generated one ([`super::password`]), and the shipped
    /// root CAs.
    pub fn with_password(given: Option<Secret>) -> Result<Self, super::PasswordError> {
        Ok(RenderContext::new(super::password::master_key_password(
            given,
        )?))
    }
}

/// Why an op could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// Root CA trust was asked for but no root CA certificate is configured.
    #[error(
        "no Azure root CA certificate is configured: add the DER bytes of MicrosoftPKI \
         (Microsoft RSA Root Certificate Authority 2017) and DigiCertPKI (DigiCert Global Root \
         G2) to RenderContext::root_cas"
    )]
    NoRootCertificates,
}

impl SourceOp {
    /// The batches that carry out this op, in order. Every batch is guarded, so running them
    /// again after a crash is safe. Root CA trust is one batch per certificate; every other op
    /// is one batch.
    pub fn render(&self, ctx: &RenderContext) -> Result<Vec<Batch>, RenderError> {
        let batch = match self {
            SourceOp::EnsureMasterKey => tsql::create_master_key(&ctx.master_key_password),
            SourceOp::EnsureEndpointCertificate {
                name,
                subject,
                expiry,
            } => tsql::create_endpoint_certificate(name, subject, *expiry),
            SourceOp::EnsureMirroringEndpoint { spec } => tsql::create_mirroring_endpoint(spec),
            SourceOp::ExportCertificatePublicKey { name } => {
                tsql::export_certificate_public_key(name)
            }
            SourceOp::ImportInstanceCertificate { fqdn, der } => {
                tsql::import_certificate_from_binary(&fqdn.certificate_name(), der)
            }
            SourceOp::EnsureRootCaTrust => {
                if ctx.root_cas.is_empty() {
                    return Err(RenderError::NoRootCertificates);
                }
                return Ok(ctx
                    .root_cas
                    .iter()
                    .map(|(name, der)| tsql::import_root_ca(name, der, tsql::AZURE_DNS_PATTERN))
                    .collect());
            }
            SourceOp::CreateAvailabilityGroup { spec } => tsql::create_availability_group(spec),
            SourceOp::GrantCreateAnyDatabase { ag } => tsql::grant_create_any_database(ag),
            SourceOp::CreateDistributedAvailabilityGroup { spec } => {
                tsql::create_distributed_availability_group(spec)
            }
            SourceOp::SetAvailabilityMode {
                dag,
                sql_ag,
                mi_ag,
                mode,
            } => tsql::set_dag_availability_mode(dag, sql_ag, mi_ag, *mode),
            SourceOp::Failover { dag } => tsql::failover_dag(dag),
            SourceOp::ForceFailover { dag } => tsql::force_failover_dag(dag),
            SourceOp::SetRoleSecondary { dag } => tsql::set_dag_role_secondary(dag),
            SourceOp::DropDistributedAvailabilityGroup { dag } => {
                tsql::drop_distributed_availability_group(dag)
            }
            SourceOp::DropAvailabilityGroup { ag } => tsql::drop_availability_group(ag),
        };
        Ok(vec![batch])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::AvailabilityMode;
    use crate::names::{AgName, DatabaseName, EndpointName, LinkName, MiFqdn, TcpPort};

    fn ctx() -> RenderContext {
        RenderContext {
            master_key_password: Secret::new("Str0ng!Passw0rd"),
            root_cas: vec![
                (
                    CertificateName::new("MicrosoftPKI").unwrap(),
                    vec![0x30, 0x82, 0x05, 0xA8],
                ),
                (
                    CertificateName::new("DigiCertPKI").unwrap(),
                    vec![0x30, 0x82, 0x03, 0x8E],
                ),
            ],
        }
    }

    fn one(op: SourceOp) -> Batch {
        let mut batches = op.render(&ctx()).unwrap();
        assert_eq!(batches.len(), 1);
        batches.remove(0)
    }

    fn link() -> LinkName {
        LinkName::new("tailspin-link").unwrap()
    }

    #[test]
    fn the_default_context_carries_the_shipped_root_cas() {
        let ctx = RenderContext::new(Secret::new("Str0ng!Passw0rd"));
        let batches = SourceOp::EnsureRootCaTrust.render(&ctx).unwrap();
        assert_eq!(batches.len(), 2);
        assert!(batches[0].expose_sql().contains(
            "CREATE CERTIFICATE [MicrosoftPKI] FROM BINARY = 0x308205A830820390A00302010202101ED3"
        ));
        assert!(batches[1].expose_sql().contains(
            "CREATE CERTIFICATE [DigiCertPKI] FROM BINARY = \
             0x3082038E30820276A0030201020210033AF1E6A711A9A0BB2864B11D09FAE5"
        ));
        let generated = RenderContext::with_password(None).unwrap();
        assert_eq!(generated.root_cas, ctx.root_cas);
        assert!(RenderContext::with_password(Some(Secret::new("weak"))).is_err());
    }

    #[test]
    fn the_master_key_password_reaches_only_the_server() {
        let b = one(SourceOp::EnsureMasterKey);
        assert!(b.is_sensitive());
        assert!(b.expose_sql().contains("N'Str0ng!Passw0rd'"));
        assert!(!b.display_sql().contains("Str0ng"));
        assert!(!format!("{b:?}").contains("Str0ng"));
        assert!(!format!("{:?}", ctx()).contains("Str0ng"));
    }

    #[test]
    fn root_ca_trust_is_one_guarded_batch_per_certificate() {
        let batches = SourceOp::EnsureRootCaTrust.render(&ctx()).unwrap();
        assert_eq!(batches.len(), 2);
        assert!(
            batches[0]
                .expose_sql()
                .contains("CREATE CERTIFICATE [MicrosoftPKI] FROM BINARY = 0x308205A8")
        );
        assert!(batches[1].expose_sql().contains("[DigiCertPKI]"));
        for b in &batches {
            assert!(b.expose_sql().contains("sp_certificate_add_issuer"));
            assert!(b.expose_sql().contains("N'*.database.windows.net'"));
        }
        let none = RenderContext {
            root_cas: vec![],
            ..ctx()
        };
        assert_eq!(
            SourceOp::EnsureRootCaTrust.render(&none),
            Err(RenderError::NoRootCertificates)
        );
    }

    #[test]
    fn the_instance_certificate_is_named_after_its_fqdn() {
        let b = one(SourceOp::ImportInstanceCertificate {
            fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
            der: vec![0xAB, 0xCD],
        });
        assert!(b.expose_sql().contains(
            "CREATE CERTIFICATE [tailspin-mi.abc123.database.windows.net] FROM BINARY = 0xABCD"
        ));
    }

    #[test]
    fn the_endpoint_uses_certificate_authentication_and_aes() {
        let b = one(SourceOp::EnsureMirroringEndpoint {
            spec: tsql::MirroringEndpointSpec {
                name: EndpointName::new("database_mirroring_endpoint").unwrap(),
                port: TcpPort::new(5023).unwrap(),
                certificate: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
                auth: tsql::EndpointAuth::Certificate,
                encryption: tsql::EndpointEncryption::Aes,
            },
        });
        let sql = b.expose_sql();
        assert!(sql.contains("LISTENER_PORT = 5023"), "{sql}");
        assert!(sql.contains("AUTHENTICATION = CERTIFICATE [Cert_TailspinSql_endpoint]"));
        assert!(sql.contains("ENCRYPTION = REQUIRED ALGORITHM AES)"));
    }

    #[test]
    fn availability_modes_map_to_their_keywords() {
        for (mode, keyword) in [
            (
                AvailabilityMode::SynchronousCommit,
                "AVAILABILITY_MODE = SYNCHRONOUS_COMMIT",
            ),
            (
                AvailabilityMode::AsynchronousCommit,
                "AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT",
            ),
        ] {
            let b = one(SourceOp::SetAvailabilityMode {
                dag: link(),
                sql_ag: AgName::new("AG_ToyStore").unwrap(),
                mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                mode,
            });
            assert_eq!(b.expose_sql().matches(keyword).count(), 2, "{b}");
        }
    }

    #[test]
    fn each_op_renders_its_statement() {
        let ag = AgName::new("AG_ToyStore").unwrap();
        let cases: Vec<(SourceOp, &str)> = vec![
            (
                SourceOp::EnsureEndpointCertificate {
                    name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
                    subject: "Certificate for Cert_TailspinSql_endpoint".to_owned(),
                    expiry: crate::time::Date::new(2030, 1, 1).unwrap(),
                },
                "EXPIRY_DATE = N'20300101'",
            ),
            (
                SourceOp::ExportCertificatePublicKey {
                    name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
                },
                "CERTENCODED(CERT_ID(N'Cert_TailspinSql_endpoint'))",
            ),
            (
                SourceOp::CreateAvailabilityGroup {
                    spec: tsql::CreateAgSpec {
                        ag: ag.clone(),
                        databases: vec![DatabaseName::new("ToyStore").unwrap()],
                        replica: crate::names::ServerName::new("TailspinSql").unwrap(),
                        endpoint_url: "TCP://10.0.0.4:5022".to_owned(),
                        cluster_type_none: true,
                    },
                },
                "CREATE AVAILABILITY GROUP [AG_ToyStore]",
            ),
            (
                SourceOp::GrantCreateAnyDatabase { ag: ag.clone() },
                "GRANT CREATE ANY DATABASE",
            ),
            (
                SourceOp::CreateDistributedAvailabilityGroup {
                    spec: tsql::CreateDagSpec {
                        dag: link(),
                        sql_ag: ag.clone(),
                        sql_listener_url: "TCP://10.0.0.4:5022".to_owned(),
                        mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                        mi_fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
                        mi_database: None,
                        session_timeout_s: 20,
                    },
                },
                "WITH (DISTRIBUTED)",
            ),
            (
                SourceOp::Failover { dag: link() },
                "[tailspin-link] FAILOVER;",
            ),
            (
                SourceOp::ForceFailover { dag: link() },
                "[tailspin-link] FORCE_FAILOVER_ALLOW_DATA_LOSS;",
            ),
            (
                SourceOp::SetRoleSecondary { dag: link() },
                "[tailspin-link] SET (ROLE = SECONDARY);",
            ),
            (
                SourceOp::DropDistributedAvailabilityGroup { dag: link() },
                "DROP AVAILABILITY GROUP [tailspin-link];",
            ),
            (
                SourceOp::DropAvailabilityGroup { ag },
                "DROP AVAILABILITY GROUP [AG_ToyStore];",
            ),
        ];
        for (op, expected) in cases {
            let b = one(op.clone());
            assert!(b.expose_sql().contains(expected), "{op:?}\n{b}");
            assert!(!b.is_sensitive(), "{op:?}");
        }
    }
}
