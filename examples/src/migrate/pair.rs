//! The pair `migrate` drives: the configuration with the flags over it, the secrets from the
//! environment (or a prompt), the real ports (the SQL Server adapter over TDS, the ARM adapter
//! with the instance's T-SQL reads), the assessment read from both sides, and the link spec
//! built from what was read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use milink_core::arm::client::{ArmManagedInstance, ArmOptions};
use milink_core::assess::{
    self, AssessOptions, DatabaseFacts, GatherOptions, InstanceFacts, ModuleScan, ReadinessReport,
    TargetFacts, gather_instance_facts,
};
use milink_core::lifecycle::{
    FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec,
};
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, MiFqdn, SqlVersion, TcpPort, UpdatePolicy,
};
use milink_core::secret::Secret;
use milink_core::sqlserver::connection::Connection;
use milink_core::sqlserver::instance_reads::{InstanceTsql, WithInstanceTsql};
use milink_core::sqlserver::render::RenderContext;
use milink_core::sqlserver::{SqlServerAdapter, TdsFactSource};
use milink_core::time::{Clock, Date, SystemClock, SystemTimer, Timestamp};

use super::Failure;
use super::cli::Cli;
use crate::config::LinkConfig;

/// The application name SQL Server sees.
const APPLICATION: &str = "milink migrate";
/// The environment variable of a master key password chosen by the user.
pub const MASTER_KEY_PASSWORD_ENV: &str = "MILINK_MASTER_KEY_PASSWORD";

/// The configuration file with the flags and environment variables over it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The effective configuration.
    pub config: LinkConfig,
    /// The journal file.
    pub journal: PathBuf,
    /// Progress bars and in-place refreshes are allowed (a terminal, and not `--plain`).
    pub fancy: bool,
}

impl Settings {
    /// Reads the configuration named by `cli` and lays the flags over it.
    pub fn load(cli: &Cli) -> Result<Settings, Failure> {
        let text = std::fs::read_to_string(&cli.config).map_err(|e| {
            Failure::usage(format!(
                "cannot read the configuration {}: {e}",
                cli.config.display()
            ))
        })?;
        let mut config = LinkConfig::from_toml(&text)
            .map_err(|e| Failure::usage(format!("{}: {e}", cli.config.display())))?;
        if let Some(v) = &cli.sql_host {
            config.sql_server.host.clone_from(v);
        }
        if let Some(v) = cli.sql_port {
            config.sql_server.port = v;
        }
        if let Some(v) = &cli.sql_user {
            config.sql_server.user.clone_from(v);
        }
        if let Some(v) = &cli.managed_instance {
            config.managed_instance.resource_id.clone_from(v);
        }
        if let Some(v) = &cli.link {
            config.link.name.clone_from(v);
        }
        if let Some(v) = &cli.endpoint_host {
            config.link.endpoint_host = Some(v.clone());
        }
        let base = cli.config.parent().unwrap_or(Path::new("."));
        let journal = cli
            .journal
            .clone()
            .or_else(|| config.link.journal.as_ref().map(|j| base.join(j)))
            .unwrap_or_else(|| base.join(format!("{}.journal", config.link.name)));
        let fancy = !cli.plain && console::Term::stdout().is_term();
        Ok(Settings {
            config,
            journal,
            fancy,
        })
    }

    /// The link's name, checked.
    pub fn link(&self) -> Result<LinkName, Failure> {
        LinkName::new(self.config.link.name.as_str())
            .map_err(|e| Failure::usage(format!("[link] name: {e}")))
    }

    /// The link's databases, checked.
    pub fn databases(&self) -> Result<Vec<DatabaseName>, Failure> {
        if self.config.link.databases.is_empty() {
            return Err(Failure::usage("[link] databases is empty"));
        }
        self.config
            .link
            .databases
            .iter()
            .map(|d| {
                DatabaseName::new(d.as_str())
                    .map_err(|e| Failure::usage(format!("[link] databases: {e}")))
            })
            .collect()
    }

    /// The managed instance's resource id, checked.
    pub fn instance_id(&self) -> Result<InstanceId, Failure> {
        InstanceId::parse(&self.config.managed_instance.resource_id)
            .map_err(|e| Failure::usage(format!("[managed_instance] resource_id: {e}")))
    }

    /// Which pair this is, as the journal records it: SQL Server's address and the managed
    /// instance's resource id. A journal is resumed only against the pair it was created on.
    pub fn world(&self) -> String {
        format!(
            "SQL Server {}:{} linked to {}",
            self.config.sql_server.host,
            self.config.sql_server.port,
            self.config
                .managed_instance
                .resource_id
                .to_ascii_lowercase()
        )
    }
}

/// A secret by its variable's name: the environment, else (on a terminal) a prompt that does
/// not echo. Never a flag.
pub fn lookup_secret(name: &str) -> Option<String> {
    if let Ok(v) = std::env::var(name)
        && !v.trim().is_empty()
    {
        return Some(v);
    }
    let term = console::Term::stderr();
    if !term.is_term() {
        return None;
    }
    term.write_str(&format!("{name} (not set; typed, not shown): "))
        .ok()?;
    term.read_secure_line()
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// A connection to SQL Server from the configuration.
pub fn sql_connection(settings: &Settings) -> Result<Connection, Failure> {
    let options = settings
        .config
        .sql_server
        .connect_options(&lookup_secret, APPLICATION)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(Connection::new(options, Arc::new(SystemTimer)))
}

/// The ARM adapter from the configuration.
pub fn arm(settings: &Settings) -> Result<ArmManagedInstance, Failure> {
    let mi = &settings.config.managed_instance;
    let mut options = ArmOptions::builder().endpoint(mi.arm_endpoint.clone());
    if let Some(ca) = &mi.arm_trusted_ca_file {
        let der = std::fs::read(ca).map_err(|e| {
            Failure::usage(format!(
                "[managed_instance] arm_trusted_ca_file {}: {e}",
                ca.display()
            ))
        })?;
        options = options.trust_root_der(der);
    }
    let credential = mi
        .credential(&lookup_secret)
        .map_err(|e| Failure::usage(e.to_string()))?;
    ArmManagedInstance::new(settings.instance_id()?, credential, options.build())
        .map_err(|e| Failure::failed(format!("the ARM adapter: {e}")))
}

/// A name derived from the configuration and what was read, checked.
fn name<T>(r: Result<T, milink_core::names::NameError>) -> Result<T, Failure> {
    r.map_err(|e| Failure::usage(format!("a name derived from the configuration: {e}")))
}

/// The managed instance's port: ARM, with its T-SQL endpoint for the reads ARM cannot make.
pub type InstancePort = WithInstanceTsql<ArmManagedInstance>;

/// The session's two ports.
pub fn ports(settings: &Settings) -> Result<(SqlServerAdapter, InstancePort), Failure> {
    // Optional: without it the adapter generates one, so it is never prompted for.
    let password = std::env::var(MASTER_KEY_PASSWORD_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new);
    let render = RenderContext::with_password(password)
        .map_err(|e| Failure::usage(format!("{MASTER_KEY_PASSWORD_ENV}: {e}")))?;
    let source = SqlServerAdapter::new(sql_connection(settings)?, render);
    let tsql = settings
        .config
        .managed_instance
        .tsql
        .as_ref()
        .ok_or_else(|| {
            Failure::usage(
                "[managed_instance.tsql] is missing: the link's removal waits for the instance's \
             first full backup, which only its T-SQL endpoint reports",
            )
        })?;
    let options = tsql
        .connect_options(&lookup_secret, APPLICATION)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let instance = WithInstanceTsql::new(
        arm(settings)?,
        InstanceTsql::new(Connection::new(options, Arc::new(SystemTimer))),
    );
    Ok((source, instance))
}

/// What the assessment read and concluded.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// SQL Server.
    pub instance: InstanceFacts,
    /// Its user databases.
    pub databases: Vec<DatabaseFacts>,
    /// The managed instance.
    pub target: TargetFacts,
    /// Databases whose module text could not be read (their code-based checks are not
    /// evaluated), with the reason.
    pub module_notes: Vec<(DatabaseName, String)>,
    /// The verdicts.
    pub report: ReadinessReport,
    /// When it was read.
    pub at: Timestamp,
}

/// Reads both sides (read-only: the readiness probes over TDS, the instance over ARM) and
/// assesses the link's databases.
pub async fn assess(settings: &Settings) -> Result<Assessment, Failure> {
    let databases = settings.databases()?;
    let connection = sql_connection(settings)?;
    let source = TdsFactSource::new(&connection);
    let gathered = gather_instance_facts(
        &source,
        &GatherOptions {
            modules: ModuleScan::Only(databases.clone()),
            ..GatherOptions::default()
        },
    )
    .await
    .map_err(|e| {
        if e.is_transient() {
            Failure::retryable(format!("reading SQL Server: {e}"))
        } else {
            Failure::failed(format!("reading SQL Server: {e}"))
        }
    })?;
    let target = arm(settings)?
        .target_facts()
        .await
        .map_err(|e| Failure::port("reading the managed instance", &e))?;
    let at = SystemClock.now();
    let two_way = gathered
        .instance
        .version
        .capabilities()
        .failback_allowed_with(target.update_policy.unwrap_or(UpdatePolicy::AlwaysUpToDate));
    let options = AssessOptions {
        failback: two_way,
        ..AssessOptions::at(at)
    };
    let report = assess::assess(
        &gathered.instance,
        &gathered.databases,
        Some(&target),
        &options,
    );
    Ok(Assessment {
        instance: gathered.instance,
        databases: gathered.databases,
        target,
        module_notes: gathered.module_scan_errors,
        report,
        at,
    })
}

impl Assessment {
    /// The link spec for `settings`' link, from what was read: SQL Server's name and build,
    /// its existing mirroring endpoint (name and port) if any, the instance's address and
    /// update policy; a two-way link when the build and the policy allow failback.
    pub fn spec(&self, settings: &Settings) -> Result<LinkSpec, Failure> {
        let link = settings.link()?;
        let databases = settings.databases()?;
        let host = settings
            .config
            .link
            .endpoint_host
            .as_deref()
            .ok_or_else(|| {
                Failure::usage(
                    "[link] endpoint_host is not set: the address the managed instance reaches SQL \
                 Server's mirroring endpoint at",
                )
            })?;
        let existing = self.instance.endpoints.first();
        let port = settings
            .config
            .link
            .endpoint_port
            .or(existing.map(|e| e.port))
            .unwrap_or(TcpPort::MIRRORING_DEFAULT.get());
        let short: String = self
            .instance
            .server_name
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let first = databases
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let policy = self
            .target
            .update_policy
            .unwrap_or(UpdatePolicy::AlwaysUpToDate);
        let version: SqlVersion = self.instance.version;
        let two_way = version.capabilities().failback_allowed_with(policy);
        let expiry = Date::from_days_since_epoch(self.at.date().days_since_epoch() + 365);
        let timing = settings.config.timing.unwrap_or_default();
        let spec = LinkSpec {
            link,
            mode: if databases.len() == 1 {
                LinkMode::SingleDatabase
            } else {
                LinkMode::MultiDatabase
            },
            databases,
            initial_primary: Side::SqlServer,
            failover_mode: if two_way {
                FailoverMode::Manual
            } else {
                FailoverMode::None
            },
            seeding_mode: SeedingMode::Automatic,
            source: SourceSpec {
                server: self.instance.server_name.clone(),
                version,
                endpoint_host: name(EndpointHost::new(host))?,
                endpoint_port: name(TcpPort::new(port))?,
                endpoint_name: name(EndpointName::new(
                    existing.map_or("database_mirroring_endpoint", |e| e.name.as_str()),
                ))?,
                certificate: name(CertificateName::new(format!("Cert_{short}_endpoint")))?,
                certificate_expiry: expiry,
                ag: name(AgName::new(format!("AG_{first}")))?,
            },
            target: TargetSpec {
                instance: settings.instance_id()?,
                fqdn: self.target.fqdn.clone(),
                ag: name(AgName::new(format!("AG_{first}_MI")))?,
                update_policy: policy,
            },
            session_timeout_s: 20,
            options: timing.apply(MachineOptions::default()),
            route: milink_core::lifecycle::LinkRoute::Direct,
        };
        spec.validate()
            .map_err(|e| Failure::refused(format!("the link cannot be created: {e}")))?;
        Ok(spec)
    }

    /// The managed instance's address.
    pub fn fqdn(&self) -> &MiFqdn {
        &self.target.fqdn
    }
}
