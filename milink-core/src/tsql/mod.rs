//! T-SQL builders: every statement milink runs on SQL Server or the managed instance.
//!
//! Builders accept only validated names and typed values, quote them through [`quote`], and
//! return a [`Batch`]. No user data is ever formatted into SQL text any other way.

pub mod availability_groups;
pub mod certificates;
pub mod endpoint;
pub mod probes;
pub mod quote;
pub mod readiness;
pub mod remediation;
pub mod workload;

use std::fmt;

use serde::{Serialize, Serializer};

pub use availability_groups::{
    AvailabilityMode, CreateAgSpec, CreateDagSpec, create_availability_group,
    create_distributed_availability_group, drop_availability_group,
    drop_distributed_availability_group, failover_dag, force_failover_dag,
    grant_create_any_database, mi_listener_url, set_dag_availability_mode, set_dag_role_secondary,
};
pub use certificates::{
    AZURE_DNS_PATTERN, azure_root_cas, create_endpoint_certificate, create_master_key,
    export_certificate_public_key, import_certificate_from_binary, import_root_ca,
};
pub use endpoint::{
    EndpointAuth, EndpointEncryption, MirroringEndpointSpec, alter_mirroring_endpoint,
    create_mirroring_endpoint,
};
pub use probes::{
    probe_certificates, probe_database_replica_states, probe_database_replica_states_by_database,
    probe_dns_record_name, probe_first_full_backups, probe_hadr_port, probe_instance_link_state,
    probe_instance_update_type, probe_replica_states, probe_seeding_stats,
    probe_sp_certificate_add_issuer_exists,
};
pub use quote::{SqlIdentifier, binary_literal, quote_ident, quote_nstring};
pub use workload::probe_workload_activity;

/// One T-SQL batch, ready to send.
///
/// A batch that carries a secret (a master key password) keeps a redacted copy for display:
/// `Debug`, `Display` and `Serialize` show the redacted text, and only [`Batch::expose_sql`]
/// returns the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct Batch {
    purpose: &'static str,
    sql: String,
    redacted: Option<String>,
}

impl Batch {
    /// A batch without secrets.
    pub fn new(purpose: &'static str, sql: String) -> Self {
        Batch {
            purpose,
            sql,
            redacted: None,
        }
    }

    /// A batch whose text contains a secret; `redacted` is what everyone but the server sees.
    pub fn with_secret(purpose: &'static str, sql: String, redacted: String) -> Self {
        Batch {
            purpose,
            sql,
            redacted: Some(redacted),
        }
    }

    /// A short description of what the batch does.
    pub fn purpose(&self) -> &'static str {
        self.purpose
    }

    /// The text to display or log: redacted when the batch carries a secret.
    pub fn display_sql(&self) -> &str {
        self.redacted.as_deref().unwrap_or(&self.sql)
    }

    /// The text to send to the server. Never log it.
    pub fn expose_sql(&self) -> &str {
        &self.sql
    }

    /// Whether the batch carries a secret.
    pub fn is_sensitive(&self) -> bool {
        self.redacted.is_some()
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("purpose", &self.purpose)
            .field("sql", &self.display_sql())
            .finish()
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_sql())
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Batch", 2)?;
        st.serialize_field("purpose", self.purpose)?;
        st.serialize_field("sql", self.display_sql())?;
        st.end()
    }
}
