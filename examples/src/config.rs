//! The configuration file of a link between a real SQL Server and a real managed instance: what
//! `tailspin --serve` prints for its simulated pair, and what a tool that drives a real pair
//! reads. TOML; unknown keys are refused so a misspelt key never falls back to a default.
//! Secrets are never in the file: it names the environment variables that hold them.

use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use milink_core::lifecycle::MachineOptions;
use milink_core::secret::Secret;
use milink_core::sqlserver::connection::{ConnectOptions, Encryption};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The SQL Server that holds the databases.
    pub sql_server: SqlEndpoint,
    /// The managed instance.
    pub managed_instance: InstanceConfig,
    /// The link.
    pub link: LinkSection,
    /// The machine's waits, when they differ from the library's defaults (a test peer whose
    /// clock runs faster than the wall clock shortens them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

/// The machine's waits, in milliseconds; a key left out keeps the library's default
/// (`milink_core::lifecycle::MachineOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// How often the link is read while waiting (seeding, catch-up, role checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_interval_ms: Option<u64>,
    /// How soon an accepted ARM operation is polled the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_poll_ms: Option<u64>,
    /// How long both sides' hardened LSNs must stay equal before a role change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability_window_ms: Option<u64>,
}

impl Timing {
    /// The library's machine options with these waits.
    pub fn apply(&self, mut options: MachineOptions) -> MachineOptions {
        let ms = std::time::Duration::from_millis;
        if let Some(v) = self.probe_interval_ms {
            options.probe_interval = ms(v);
        }
        if let Some(v) = self.first_poll_ms {
            options.first_poll = ms(v);
        }
        if let Some(v) = self.stability_window_ms {
            options.stability_window = ms(v);
        }
        options
    }
}

/// A SQL Server (or a managed instance's T-SQL endpoint) reached over TDS with a SQL login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlEndpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// SQL login.
    pub user: String,
    /// The environment variable that holds the login's password.
    pub password_env: String,
    /// A CA certificate (DER or PEM) to trust for this server's TLS certificate, besides the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_ca_file: Option<PathBuf>,
}

/// The managed instance: its ARM resource and, optionally, its T-SQL endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}`.
    pub resource_id: String,
    /// The management endpoint (`https://management.azure.com` in the public cloud).
    pub arm_endpoint: String,
    /// A CA certificate to trust for the management endpoint's TLS certificate (a test peer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_trusted_ca_file: Option<PathBuf>,
    /// How the ARM bearer token is obtained.
    pub credential: CredentialKind,
    /// With `credential = "token-env"`: the environment variable that holds the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The instance's T-SQL endpoint, for the reads ARM cannot make (first full backups,
    /// client sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsql: Option<SqlEndpoint>,
}

/// Where the ARM token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// The credential the environment names (workload identity, client secret, managed
    /// identity, Azure CLI: `milink_core::arm::client::credential_from_environment`).
    Environment,
    /// A bearer token in the environment variable `token_env` (a test peer's shared token).
    TokenEnv,
}

/// The link's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    /// The link (the distributed availability group) name.
    pub name: String,
    /// The databases it carries.
    pub databases: Vec<String>,
    /// The address the managed instance reaches SQL Server's database mirroring endpoint at
    /// (a name or IP address routable from the instance's subnet); needed to create the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_host: Option<String>,
    /// The mirroring endpoint's TCP port (default 5022, or the existing endpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_port: Option<u16>,
    /// The link's journal file (default: `<link>.journal` next to the configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<PathBuf>,
}

/// A configuration file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or not this file's shape; the message names the key.
    #[error("the configuration is not valid: {0}")]
    Invalid(String),
    /// `credential = "token-env"` without `token_env`.
    #[error("credential = \"token-env\" needs token_env, the variable that holds the token")]
    MissingTokenEnv,
    /// A secret's variable is not set (or empty).
    #[error("the environment variable {0} is not set: it holds a secret the configuration names")]
    MissingSecret(String),
    /// The connection options were refused.
    #[error("{0}")]
    Connection(String),
    /// No credential could be built from the environment.
    #[error("no ARM credential: {0}")]
    Credential(String),
}

/// Where secrets are looked up by name (the process environment, or a `secrets.env`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn secret(lookup: Lookup<'_>, name: &str) -> Result<Secret, ConfigError> {
    match lookup(name) {
        Some(v) if !v.trim().is_empty() => Ok(Secret::new(v)),
        _ => Err(ConfigError::MissingSecret(name.to_owned())),
    }
}

impl SqlEndpoint {
    /// How to connect: the SQL login with the password from `lookup`, TLS required, the
    /// configured CA trusted.
    pub fn connect_options(
        &self,
        lookup: Lookup<'_>,
        application_name: &str,
    ) -> Result<ConnectOptions, ConfigError> {
        let mut b = ConnectOptions::builder(self.host.as_str())
            .port(self.port)
            .sql_login(self.user.as_str(), secret(lookup, &self.password_env)?)
            .encryption(Encryption::Mandatory)
            .application_name(application_name);
        if let Some(ca) = &self.trusted_ca_file {
            b = b.trusted_ca(ca.clone());
        }
        b.build()
            .map_err(|e| ConfigError::Connection(e.to_string()))
    }
}

impl InstanceConfig {
    /// The ARM credential the configuration names.
    pub fn credential(&self, lookup: Lookup<'_>) -> Result<Arc<dyn TokenCredential>, ConfigError> {
        match self.credential {
            CredentialKind::Environment => milink_core::arm::client::credential_from_environment()
                .map_err(|e| ConfigError::Credential(e.to_string())),
            CredentialKind::TokenEnv => {
                let name = self
                    .token_env
                    .as_deref()
                    .ok_or(ConfigError::MissingTokenEnv)?;
                Ok(Arc::new(StaticToken::new(secret(lookup, name)?)))
            }
        }
    }
}

/// One bearer token, handed out as is: a test peer's shared token (the lab over the wire, a
/// `--serve`d pair).
pub use milink_core::arm::client::StaticToken;

impl LinkConfig {
    /// Reads a configuration from TOML text.
    pub fn from_toml(text: &str) -> Result<LinkConfig, ConfigError> {
        let config: LinkConfig =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if config.managed_instance.credential == CredentialKind::TokenEnv
            && config.managed_instance.token_env.is_none()
        {
            return Err(ConfigError::MissingTokenEnv);
        }
        Ok(config)
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[sql_server]
host = "sql01.contoso.local"
port = 1433
user = "milink"
password_env = "MILINK_SQL_PASSWORD"

[managed_instance]
resource_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi"
arm_endpoint = "https://management.azure.com"
credential = "environment"

[link]
name = "DAG_ToyStore"
databases = ["ToyStore"]
"#;

    #[test]
    fn a_configuration_reads_and_writes_back_the_same() {
        let c = LinkConfig::from_toml(SAMPLE).unwrap();
        assert_eq!(c.sql_server.port, 1433);
        assert_eq!(c.managed_instance.credential, CredentialKind::Environment);
        assert_eq!(c.managed_instance.tsql, None);
        assert_eq!(LinkConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let bad = SAMPLE.replace("password_env", "pasword_env");
        let e = LinkConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("pasword_env"), "{e}");
        let bad = SAMPLE.replace("\"environment\"", "\"secret-in-file\"");
        let e = LinkConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("secret-in-file"), "{e}");
    }

    #[test]
    fn a_token_credential_names_its_variable() {
        let bad = SAMPLE.replace("\"environment\"", "\"token-env\"");
        assert!(matches!(
            LinkConfig::from_toml(&bad),
            Err(ConfigError::MissingTokenEnv)
        ));
        let good = bad.replace(
            "credential = \"token-env\"",
            "credential = \"token-env\"\ntoken_env = \"MILINK_ARM_TOKEN\"",
        );
        assert!(LinkConfig::from_toml(&good).is_ok());
    }
}
