//! Instance checks on SQL Server: version, edition, HADR, endpoint, certificates.

use crate::assess::facts::{Edition, HostPlatform};
use crate::names::{CertificateName, EndpointName, LinkMode, TcpPort};
use crate::secret::Secret;
use crate::tsql::remediation::{self, LinkTraceFlag};
use crate::tsql::{
    EndpointAuth, EndpointEncryption, MirroringEndpointSpec, alter_mirroring_endpoint,
    azure_root_cas, create_master_key,
};

use super::{
    Check, Context, Evidence, F11, F13, F14, F15, Fix, Outcome, Rule, ScopeKind, Severity, list,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    SQL_VERSION,
    AZURE_CONNECT_PACK,
    EDITION,
    MULTI_DATABASE_MODE,
    FROM_MANAGED_INSTANCE,
    HOST_OS,
    SYSADMIN,
    FAILOVER_CLUSTER_2016,
    SYSTEM_ACCOUNT_2016,
    HADR_ENABLED,
    LINK_TRACE_FLAGS,
    TRACE_FLAGS_AT_STARTUP,
    MASTER_KEY,
    ENDPOINT_MISSING,
    ENDPOINT,
    ENDPOINT_PORT,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_EXPIRING,
    INSTANCE_CERTIFICATE,
    ROOT_CA_TRUST,
];

const SQL_VERSION: Rule = rule!(
    "Link.SqlVersion",
    Blocker,
    Instance,
    "SQL Server version supports the link",
    F11,
    "SERVERPROPERTY('ProductVersion') against the minimum builds",
    Instance(sql_version)
);
fn sql_version(ctx: &Context<'_>) -> Outcome {
    let v = ctx.instance.version;
    let caps = v.capabilities();
    if caps.link_supported {
        return Outcome::Pass;
    }
    let ev = Evidence::new(format!(
        "{} build {v} does not support the managed instance link",
        v.release_name()
    ))
    .with("version", v);
    match caps.minimum_build {
        Some(min) => Outcome::Fail(
            ev.with("minimum build", min),
            Fix::action(format!(
                "Update {} to build {min} or later.",
                v.release_name()
            )),
        ),
        None => Outcome::Fail(
            ev,
            Fix::action(
                "Upgrade to a release that supports the link: SQL Server 2016 SP3 with the Azure \
                 Connect pack, 2017 CU31 with the Azure Connect pack, 2019 CU20, 2022 or 2025.",
            ),
        ),
    }
}

const AZURE_CONNECT_PACK: Rule = rule!(
    "Link.AzureConnectPack",
    Blocker,
    Instance,
    "The Azure Connect pack is installed (2016, 2017) and sp_certificate_add_issuer exists",
    F11,
    "SERVERPROPERTY('ProductVersion') against the Azure Connect pack's build (2016: 13.0.7000.253, 2017: 14.0.3490.10), and OBJECT_ID('sys.sp_certificate_add_issuer')",
    Instance(azure_connect_pack)
);
/// SQL Server 2016 and 2017 need their Azure Connect pack (milink-facts §1.1: 2016 SP3 +
/// 13.0.7000.253, KB5014242; 2017 CU31 + 14.0.3490.10); installing it raises
/// `ProductVersion` to the pack's build, so the build is compared, not only the procedure the
/// pack brings.
fn azure_connect_pack(ctx: &Context<'_>) -> Outcome {
    let v = ctx.instance.version;
    let pack = v.capabilities().azure_connect_pack;
    let below_pack = pack.filter(|p| v < *p);
    if ctx.instance.has_certificate_add_issuer && below_pack.is_none() {
        return Outcome::Pass;
    }
    let mut problems = Vec::new();
    if let Some(p) = below_pack {
        problems.push(format!(
            "build {v} is below the {} Azure Connect pack's build {p}",
            v.release_name()
        ));
    }
    if !ctx.instance.has_certificate_add_issuer {
        problems.push(
            "sys.sp_certificate_add_issuer does not exist: the build can't trust the Azure root CAs"
                .to_owned(),
        );
    }
    let mut ev = Evidence::new(problems.join("; ")).with("version", v);
    if let Some(p) = pack {
        ev = ev.with("Azure Connect pack build", p);
    }
    let fix = match pack {
        Some(pack) => Fix::action(format!(
            "Install the {} Azure Connect pack (build {pack}).",
            v.release_name()
        )),
        None => Fix::action(format!(
            "Install the latest cumulative update of {}; link-capable builds ship sp_certificate_add_issuer.",
            v.release_name()
        )),
    };
    Outcome::Fail(ev, fix)
}

const EDITION: Rule = rule!(
    "Link.Edition",
    Blocker,
    Instance,
    "Edition supports availability groups",
    F11,
    "SERVERPROPERTY('Edition')",
    Instance(edition)
);
fn edition(ctx: &Context<'_>) -> Outcome {
    match ctx.instance.edition {
        Edition::Enterprise | Edition::Standard | Edition::Developer | Edition::Evaluation => {
            Outcome::Pass
        }
        e @ (Edition::Express | Edition::Web | Edition::Other) => Outcome::Fail(
            Evidence::new(format!(
                "the {e} edition can't host availability groups; the link needs Enterprise, Standard or Developer"
            ))
            .with("edition", e),
            Fix::action("Upgrade the instance to Enterprise, Standard or Developer edition."),
        ),
    }
}

const MULTI_DATABASE_MODE: Rule = rule!(
    "Link.MultiDatabaseMode",
    Blocker,
    Instance,
    "MultiDatabase link mode is supported and switched on",
    "milink-facts §1.2",
    "major version, SERVERPROPERTY('ProductUpdateLevel') against 2022 CU27 / 2025 CU9, the edition, and sys.sp_multidb_milink (exists, and what it returns)",
    Instance(multi_database_mode)
);

/// The cumulative update a `ProductUpdateLevel` names (`CU27` → 27; `CU27-GDR` → 27); `None`
/// for RTM (no update level) or another form.
pub fn cumulative_update(update_level: Option<&str>) -> Option<u32> {
    let level = update_level?.trim();
    let digits: String = level
        .get(..2)
        .filter(|p| p.eq_ignore_ascii_case("CU"))
        .map(|_| {
            level[2..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })?;
    digits.parse().ok()
}

/// The cumulative update MultiDatabase links need (milink-facts §1.2): 2022 CU27, 2025 CU9.
/// Compared by `SERVERPROPERTY('ProductUpdateLevel')`, which names the CU, because the builds
/// of those CUs are not in the reference.
const fn multi_database_cu(major: u16) -> Option<u32> {
    match major {
        16 => Some(27),
        17 => Some(9),
        _ => None,
    }
}

fn multi_database_mode(ctx: &Context<'_>) -> Outcome {
    if ctx.options.link_mode != LinkMode::MultiDatabase {
        return Outcome::Pass;
    }
    let i = ctx.instance;
    let mut problems = Vec::new();
    let mut switch_off = false;
    match multi_database_cu(i.version.major) {
        None => problems.push(format!(
            "{} does not support MultiDatabase links (2022 CU27+ or 2025 CU9+)",
            i.version.release_name()
        )),
        Some(needed) => {
            let cu = cumulative_update(i.update_level.as_deref());
            if cu.is_none_or(|cu| cu < needed) {
                problems.push(format!(
                    "{} {} is below CU{needed}, the first to support MultiDatabase links",
                    i.version.release_name(),
                    i.update_level.as_deref().unwrap_or("RTM")
                ));
            } else if let Some(m) = i.multi_database {
                if !m.procedure_present {
                    problems.push("sys.sp_multidb_milink does not exist on this build".to_owned());
                } else if m.enabled == Some(false) {
                    switch_off = true;
                    problems.push(
                        "the MultiDatabase mode is off (EXEC sys.sp_multidb_milink returns 0)"
                            .to_owned(),
                    );
                }
            }
        }
    }
    if !matches!(
        i.edition,
        Edition::Enterprise | Edition::Developer | Edition::Evaluation
    ) {
        problems.push(format!(
            "the {} edition's basic availability groups hold one database",
            i.edition
        ));
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(problems.join("; "))
        .with("version", i.version)
        .with("edition", i.edition)
        .with("update level", i.update_level.as_deref().unwrap_or("RTM"));
    if let Some(enabled) = i.multi_database.and_then(|m| m.enabled) {
        ev = ev.with("sp_multidb_milink", u8::from(enabled));
    }
    if switch_off && problems.len() == 1 {
        return Outcome::Fail(
            ev,
            Fix::Sql(super::SqlFix {
                purpose: "switch the MultiDatabase link mode on".to_owned(),
                sql: "EXEC sys.sp_multidb_milink 1;".to_owned(),
                note: Some(
                    "Remove every existing link of this SQL Server first: SingleDatabase and \
                     MultiDatabase links can't coexist, and the mode can't change under a link. \
                     The setting survives restarts; run it on every replica."
                        .to_owned(),
                ),
            }),
        );
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Use SingleDatabase link mode (one link per database), or move to SQL Server 2022 \
             CU27+ / 2025 CU9+ Enterprise or Developer and run EXEC sys.sp_multidb_milink 1.",
        ),
    )
}

const FROM_MANAGED_INSTANCE: Rule = rule!(
    "Link.FromManagedInstance",
    Blocker,
    Instance,
    "A link created from the managed instance is supported",
    F11,
    "SERVERPROPERTY('ProductVersion') against 2022 CU10 (16.0.4095.4) or 2025, when the managed instance is to be the initial primary",
    Instance(from_managed_instance)
);
/// A link whose initial primary is the managed instance needs SQL Server 2022 CU10
/// (16.0.4095.4) or 2025 (milink-facts §1.1); `LinkSpec::validate` refuses the plan too, and
/// this reports it before any plan exists.
fn from_managed_instance(ctx: &Context<'_>) -> Outcome {
    if !ctx.options.from_managed_instance {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    if v.capabilities().mi_initial_primary {
        return Outcome::Pass;
    }
    let fix = if v.major == 16 {
        "Update SQL Server 2022 to CU10 (16.0.4095.4) or later, and don't go below it while the \
         link exists."
    } else {
        "Create the link from SQL Server instead (SQL Server as the initial primary), or use SQL \
         Server 2022 CU10+ or 2025."
    };
    Outcome::Fail(
        Evidence::new(format!(
            "{} build {v} can't host a link created from the managed instance (2022 CU10+ or 2025)",
            v.release_name()
        ))
        .with("version", v)
        .with("minimum", "16.0.4095.4 (2022 CU10), 17.0.1000.7 (2025)"),
        Fix::action(fix),
    )
}

const HOST_OS: Rule = rule!(
    "Link.HostOs",
    Blocker,
    Instance,
    "Host OS can run the link",
    F11,
    "the host named by @@VERSION",
    Instance(host_os)
);
fn host_os(ctx: &Context<'_>) -> Outcome {
    let h = &ctx.instance.host;
    if h.is_windows_client() {
        return Outcome::Fail(
            Evidence::new(format!(
                "{} is a client OS: the availability group feature can't be enabled",
                h.description
            ))
            .with("host", &h.description),
            Fix::action("Host SQL Server on Windows Server 2012 or later, or on Linux (2017+)."),
        );
    }
    if h.platform == HostPlatform::Linux && ctx.instance.version.major == 13 {
        return Outcome::Fail(
            Evidence::new("SQL Server 2016 supports the link on Windows Server only")
                .with("host", &h.description),
            Fix::action(
                "Use SQL Server 2017 or later on Linux, or SQL Server 2016 on Windows Server.",
            ),
        );
    }
    Outcome::Pass
}

const SYSADMIN: Rule = rule!(
    "Link.Sysadmin",
    Blocker,
    Instance,
    "milink's login is sysadmin on SQL Server",
    "milink-facts §1.7",
    "IS_SRVROLEMEMBER('sysadmin') of the login that gathered the facts",
    Instance(sysadmin)
);
/// The link's preparation on SQL Server (master key, certificates, endpoint, availability
/// groups) runs as sysadmin (milink-facts §1.7, §1.3).
fn sysadmin(ctx: &Context<'_>) -> Outcome {
    match ctx.instance.is_sysadmin {
        None => Outcome::NotEvaluated(
            "the login's server roles were not read (IS_SRVROLEMEMBER)".into(),
        ),
        Some(true) => Outcome::Pass,
        Some(false) => Outcome::Fail(
            Evidence::new(
                "the login that gathered these facts is not a member of sysadmin; preparing the \
                 link (master key, certificates, endpoint, availability groups) needs it",
            )
            .with("IS_SRVROLEMEMBER('sysadmin')", 0),
            Fix::action(
                "Connect milink with a login in the sysadmin server role (ALTER SERVER ROLE \
                 sysadmin ADD MEMBER [<login>], run by a sysadmin).",
            ),
        ),
    }
}

const FAILOVER_CLUSTER_2016: Rule = rule!(
    "Link.FailoverCluster2016",
    Blocker,
    Instance,
    "SQL Server 2016 runs on a Windows Server Failover Cluster",
    F13,
    "sys.dm_hadr_cluster (SQL Server 2016 only)",
    Instance(failover_cluster_2016)
);
/// SQL Server 2016 can't create an availability group without a Windows Server Failover
/// Cluster (a single-node cluster is enough): milink-facts §1.3, from
/// `managed-instance-link-preparation-wsfc.md`.
fn failover_cluster_2016(ctx: &Context<'_>) -> Outcome {
    if !ctx.instance.version.capabilities().wsfc_required {
        return Outcome::Pass;
    }
    let Some(cluster) = &ctx.instance.cluster else {
        return Outcome::NotEvaluated(
            "the failover cluster was not read (sys.dm_hadr_cluster)".into(),
        );
    };
    if cluster.name.is_some() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "SQL Server 2016 is on no Windows Server Failover Cluster; its availability groups need one",
        )
        .with("cluster", "none"),
        Fix::action(
            "Install the feature (Install-WindowsFeature -Name Failover-Clustering \
             -IncludeManagementTools), create a single-node cluster (New-Cluster -Name \
             \"<ClusterName>\" -AdministrativeAccessPoint None -Force), grant NT AUTHORITY\\SYSTEM \
             its permissions (Link.SystemAccount2016), then enable Always On and restart.",
        ),
    )
}

/// The server permissions `[NT AUTHORITY\SYSTEM]` needs on SQL Server 2016 for the cluster
/// to manage the availability group (milink-facts §1.3).
pub(super) const SYSTEM_ACCOUNT_PERMISSIONS: [&str; 3] = [
    "ALTER ANY AVAILABILITY GROUP",
    "CONNECT SQL",
    "VIEW SERVER STATE",
];

const SYSTEM_ACCOUNT_2016: Rule = rule!(
    "Link.SystemAccount2016",
    Blocker,
    Instance,
    "NT AUTHORITY\\SYSTEM has the availability group permissions (SQL Server 2016)",
    F13,
    "sys.server_permissions of [NT AUTHORITY\\SYSTEM]: ALTER ANY AVAILABILITY GROUP, CONNECT SQL, VIEW SERVER STATE (CONTROL SERVER covers them)",
    Instance(system_account_2016)
);
fn system_account_2016(ctx: &Context<'_>) -> Outcome {
    if !ctx.instance.version.capabilities().wsfc_required {
        return Outcome::Pass;
    }
    let Some(cluster) = &ctx.instance.cluster else {
        return Outcome::NotEvaluated(
            "NT AUTHORITY\\SYSTEM's server permissions were not read".into(),
        );
    };
    let granted = |p: &str| {
        cluster
            .system_permissions
            .iter()
            .any(|g| g.eq_ignore_ascii_case(p) || g.eq_ignore_ascii_case("CONTROL SERVER"))
    };
    let missing: Vec<&str> = SYSTEM_ACCOUNT_PERMISSIONS
        .into_iter()
        .filter(|p| !granted(p))
        .collect();
    if missing.is_empty() {
        return Outcome::Pass;
    }
    let sql = format!("GRANT {} TO [NT AUTHORITY\\SYSTEM];", missing.join(", "));
    Outcome::Fail(
        Evidence::new(format!(
            "[NT AUTHORITY\\SYSTEM] lacks {}",
            list(&missing)
        ))
        .with("missing", list(&missing))
        .with("granted", list(&cluster.system_permissions)),
        Fix::Sql(super::SqlFix {
            purpose: "grant NT AUTHORITY\\SYSTEM the availability group permissions".to_owned(),
            sql,
            note: Some(
                "USE master first. If the login does not exist, CREATE LOGIN [NT AUTHORITY\\SYSTEM] \
                 FROM WINDOWS before the GRANT."
                    .to_owned(),
            ),
        }),
    )
}

const HADR_ENABLED: Rule = rule!(
    "Link.HadrEnabled",
    Blocker,
    Instance,
    "Always On availability groups are enabled",
    F13,
    "SERVERPROPERTY('IsHadrEnabled')",
    Instance(hadr_enabled)
);
fn hadr_enabled(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.hadr_enabled {
        return Outcome::Pass;
    }
    let wsfc = if ctx.instance.version.capabilities().wsfc_required {
        " SQL Server 2016 first needs a Windows Server Failover Cluster (a single-node cluster \
         is enough) and the ALTER ANY AVAILABILITY GROUP, CONNECT SQL and VIEW SERVER STATE \
         permissions for [NT AUTHORITY\\SYSTEM]."
    } else {
        ""
    };
    Outcome::Fail(
        Evidence::new(
            "SERVERPROPERTY('IsHadrEnabled') is 0: Always On availability groups are off",
        )
        .with("IsHadrEnabled", 0),
        Fix::action(format!(
            "Enable Always On availability groups (SQL Server Configuration Manager, \
             `Enable-SqlAlwaysOn`, or `mssql-conf set hadr.hadrenabled 1` on Linux) and restart \
             the service.{wsfc}"
        )),
    )
}

const LINK_TRACE_FLAGS: Rule = rule!(
    "Link.TraceFlags",
    Warning,
    Instance,
    "Trace flags 1800 and 9567 are on",
    F13,
    "DBCC TRACESTATUS(-1)",
    Instance(link_trace_flags)
);
fn link_trace_flags(ctx: &Context<'_>) -> Outcome {
    let missing: Vec<LinkTraceFlag> = [
        LinkTraceFlag::LogIoSectorSize,
        LinkTraceFlag::SeedingCompression,
    ]
    .into_iter()
    .filter(|f| !ctx.instance.trace_flag_on(f.number()))
    .collect();
    let Some(batch) = remediation::trace_on_global(&missing) else {
        return Outcome::Pass;
    };
    let numbers = list(missing.iter().map(|f| f.number().to_string()));
    Outcome::Fail(
        Evidence::new(format!("trace flag(s) {numbers} are not on globally"))
            .with("missing", &numbers),
        Fix::sql(&[batch]).with_note(
            "DBCC TRACEON lasts until the next restart; also add the -T startup parameters \
             (SQL Server Configuration Manager, or `mssql-conf traceflag` on Linux). 1800 matters \
             when the log disks' sector sizes differ (512 B vs 4 KB); 9567 compresses seeding.",
        ),
    )
}

const TRACE_FLAGS_AT_STARTUP: Rule = rule!(
    "Link.TraceFlagsAtStartup",
    Warning,
    Instance,
    "Trace flags 1800 and 9567 survive a restart",
    F13,
    "the -T startup parameters in sys.dm_server_registry (SQLArg*) against the flags on now; not readable on Linux (mssql.conf)",
    Instance(trace_flags_at_startup)
);
/// Link.TraceFlags sees the flags that are on now; one set with `DBCC TRACEON` passes there
/// and is gone after the next restart. The documented way is a startup parameter
/// (milink-facts §1.3: Configuration Manager's `-T`, or `mssql-conf traceflag` on Linux).
fn trace_flags_at_startup(ctx: &Context<'_>) -> Outcome {
    let on_now: Vec<u32> = [
        LinkTraceFlag::LogIoSectorSize,
        LinkTraceFlag::SeedingCompression,
    ]
    .into_iter()
    .map(LinkTraceFlag::number)
    .filter(|f| ctx.instance.trace_flag_on(*f))
    .collect();
    if on_now.is_empty() {
        return Outcome::Pass;
    }
    let Some(startup) = &ctx.instance.startup_trace_flags else {
        return Outcome::NotEvaluated(format!(
            "the startup parameters could not be read (on Linux they are in mssql.conf): \
             whether trace flag(s) {} survive a restart is unknown; check `mssql-conf \
             traceflag` or the -T startup parameters",
            list(on_now.iter().map(u32::to_string))
        ));
    };
    let lost: Vec<String> = on_now
        .iter()
        .filter(|f| !startup.contains(f))
        .map(u32::to_string)
        .collect();
    if lost.is_empty() {
        return Outcome::Pass;
    }
    let flags = list(&lost);
    Outcome::Fail(
        Evidence::new(format!(
            "trace flag(s) {flags} are on now but are no -T startup parameter: the next restart \
             turns them off"
        ))
        .with("on now, not at startup", &flags),
        Fix::action(format!(
            "Add -T{} as startup parameter(s) (SQL Server Configuration Manager → Startup \
             Parameters; on Linux `mssql-conf traceflag {} on`).",
            lost.join(" -T"),
            lost.join(" ")
        )),
    )
}

const MASTER_KEY: Rule = rule!(
    "Link.MasterKey",
    Warning,
    Instance,
    "Database master key exists in master",
    F13,
    "master.sys.symmetric_keys (id 101)",
    Instance(master_key)
);
fn master_key(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.master_key_present {
        return Outcome::Pass;
    }
    // The builder redacts the password in everything but the text sent to the server, so the
    // report shows N'***' whatever is passed here.
    let batch = create_master_key(&Secret::new("<strong password>"));
    Outcome::Fail(
        Evidence::new("master has no database master key (symmetric_key_id 101)"),
        Fix::sql(&[batch]).with_note(
            "milink creates the key while preparing SQL Server. To do it yourself, replace \
             N'***' with a strong password and keep that password in your secret store.",
        ),
    )
}

const ENDPOINT_MISSING: Rule = rule!(
    "Link.EndpointMissing",
    Info,
    Instance,
    "Database mirroring endpoint exists",
    F15,
    "sys.database_mirroring_endpoints",
    Instance(endpoint_missing)
);
fn endpoint_missing(ctx: &Context<'_>) -> Outcome {
    if !ctx.instance.endpoints.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("no DATABASE_MIRRORING endpoint exists"),
        Fix::action(
            "milink creates a certificate-authenticated, AES-encrypted endpoint on TCP 5022 while \
             preparing SQL Server.",
        ),
    )
}

const ENDPOINT: Rule = rule!(
    "Link.Endpoint",
    Blocker,
    Instance,
    "Endpoint uses certificate auth and AES, and is started",
    F15,
    "sys.database_mirroring_endpoints",
    Instance(endpoint)
);
fn endpoint(ctx: &Context<'_>) -> Outcome {
    let Some(e) = ctx.instance.endpoints.first() else {
        return Outcome::Pass;
    };
    let mut problems = Vec::new();
    if !e.uses_certificate() {
        problems.push(format!(
            "authentication is {} (no certificate)",
            e.authentication
        ));
    }
    if !e.encryption_enabled {
        problems.push("encryption is disabled".to_owned());
    }
    if !e.allows_aes() {
        problems.push(format!("algorithm is {} (no AES)", e.algorithm));
    }
    if e.state != crate::assess::facts::EndpointState::Started {
        problems.push(format!("state is {:?}", e.state).to_uppercase());
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    let evidence = Evidence::new(format!("endpoint {}: {}", e.name, problems.join("; ")))
        .with("endpoint", &e.name)
        .with("authentication", &e.authentication)
        .with("encryption enabled", e.encryption_enabled)
        .with("algorithm", &e.algorithm)
        .with("state", format!("{:?}", e.state))
        .with("port", e.port);
    let auth = e.authentication.to_ascii_uppercase();
    let spec = (|| {
        Some(MirroringEndpointSpec {
            name: EndpointName::new(e.name.as_str()).ok()?,
            port: TcpPort::new(e.port).ok()?,
            certificate: CertificateName::new(e.certificate.clone()?).ok()?,
            auth: if ["NEGOTIATE", "NTLM", "KERBEROS"]
                .iter()
                .any(|w| auth.contains(w))
            {
                EndpointAuth::WindowsNegotiateCertificate
            } else {
                EndpointAuth::Certificate
            },
            encryption: if e.algorithm.to_ascii_uppercase().contains("RC4") {
                EndpointEncryption::AesRc4
            } else {
                EndpointEncryption::Aes
            },
        })
    })();
    let fix = match spec {
        Some(spec) => Fix::sql(&[alter_mirroring_endpoint(&spec)]).with_note(
            "Keeps Windows authentication and RC4 only where the endpoint already uses them \
             (other availability groups may); the link itself needs the certificate and AES.",
        ),
        None => Fix::action(format!(
            "The endpoint has no certificate: milink creates the endpoint certificate while \
             preparing SQL Server, then alters [{}] to STATE = STARTED, AUTHENTICATION = … \
             CERTIFICATE [<endpoint certificate>], ENCRYPTION = REQUIRED ALGORITHM AES.",
            e.name
        )),
    };
    Outcome::Fail(evidence, fix)
}

const ENDPOINT_PORT: Rule = rule!(
    "Link.EndpointPort",
    Warning,
    Instance,
    "A named instance has an endpoint port of its own",
    F13,
    "SERVERPROPERTY('InstanceName') and the endpoint's port; the other instances of the host are not visible from T-SQL",
    Instance(endpoint_port)
);
/// On a host with several instances each needs its own mirroring endpoint port, and only the
/// default instance should use 5022 (milink-facts §1.3, multi-instance hosts).
fn endpoint_port(ctx: &Context<'_>) -> Outcome {
    let Some(instance) = &ctx.instance.instance_name else {
        return Outcome::Pass;
    };
    let port = ctx
        .instance
        .endpoints
        .first()
        .map_or(crate::assess::network::MI_ENDPOINT_PORT, |e| e.port);
    if port != crate::assess::network::MI_ENDPOINT_PORT {
        return Outcome::Pass;
    }
    let what = match ctx.instance.endpoints.first() {
        Some(e) => format!("the endpoint {} listens on 5022", e.name),
        None => "milink's default endpoint port is 5022".to_owned(),
    };
    Outcome::Fail(
        Evidence::new(format!(
            "named instance {instance}: {what}, the port the host's default instance uses"
        ))
        .with("instance", instance)
        .with("port", port),
        Fix::action(
            "Give this instance's endpoint a port of its own (e.g. 5023: the endpoint's \
             LISTENER_PORT, or the port in milink's endpoint settings), open it in the host and \
             network firewalls, and use it in the link's partner endpoint; keep 5022 for the \
             default instance.",
        ),
    )
}

fn link_certificates<'a>(ctx: &'a Context<'_>) -> Vec<&'a crate::assess::facts::CertificateFact> {
    let mut names: Vec<String> = ctx
        .instance
        .endpoints
        .iter()
        .filter_map(|e| e.certificate.clone())
        .collect();
    if let Some(t) = ctx.target {
        names.push(t.fqdn.as_str().to_owned());
    }
    let mut certs: Vec<_> = names
        .iter()
        .filter_map(|n| ctx.instance.certificate(n))
        .collect();
    certs.dedup_by(|a, b| a.name == b.name);
    certs
}

const CERTIFICATE_EXPIRED: Rule = rule!(
    "Link.CertificateExpired",
    Blocker,
    Instance,
    "Link certificates are valid",
    F14,
    "expiry of the endpoint certificate and of the certificate named after the managed instance's FQDN",
    Instance(certificate_expired)
);
fn certificate_expired(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let expired: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry <= now)
        .collect();
    if expired.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expired: {}",
        list(expired.iter().map(|c| c.name.as_str()))
    ));
    for c in &expired {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Rotate the certificate: create a new endpoint certificate, upload its public key to \
             the managed instance as a server trust certificate, ALTER ENDPOINT … AUTHENTICATION \
             = CERTIFICATE [new], then delete the old trust certificate. For the managed \
             instance's certificate, import the current one from endpointCertificates.",
        ),
    )
}

const CERTIFICATE_EXPIRING: Rule = rule!(
    "Link.CertificateExpiring",
    Warning,
    Instance,
    "Link certificates don't expire soon",
    F14,
    "the same certificates, against the warning window",
    Instance(certificate_expiring)
);
fn certificate_expiring(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let horizon = now.plus(std::time::Duration::from_secs(
        u64::from(ctx.options.certificate_warning_days) * 86_400,
    ));
    let soon: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry > now && c.expiry <= horizon)
        .collect();
    if soon.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expiring within {} days: {}",
        ctx.options.certificate_warning_days,
        list(soon.iter().map(|c| c.name.as_str()))
    ));
    for c in &soon {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Plan the rotation before the expiry date: an expired certificate breaks the link.",
        ),
    )
}

const INSTANCE_CERTIFICATE: Rule = rule!(
    "Link.InstanceCertificate",
    Blocker,
    Instance,
    "The managed instance's certificate in master is its current one, under its FQDN",
    F14,
    "CERTENCODED of the certificates in master against the instance's endpointCertificates/DATABASE_MIRRORING publicBlob, and the name (the FQDN)",
    Instance(instance_certificate)
);
/// SQL Server authenticates the managed instance's endpoint with the instance's certificate
/// imported into master, named exactly after the instance's FQDN (milink-facts §1.4 (d)).
/// A certificate of that name holding other bytes (an old one after a rotation), or the right
/// bytes under another name, fails the connection; none at all is for milink to import.
fn instance_certificate(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(super::NO_TARGET.into());
    };
    let Some(der) = t
        .endpoint_certificate
        .as_deref()
        .and_then(crate::assess::facts::hex_bytes)
    else {
        return Outcome::NotEvaluated(
            "the managed instance's endpoint certificate was not read".into(),
        );
    };
    let fqdn = t.fqdn.as_str();
    let named = ctx.instance.certificate(fqdn);
    let same_bytes: Vec<&str> = ctx
        .instance
        .certificates
        .iter()
        .filter(|c| c.is(&der) == Some(true))
        .map(|c| c.name.as_str())
        .collect();
    let problem = match named {
        Some(c) => match c.is(&der) {
            None => {
                return Outcome::NotEvaluated(format!(
                    "the bytes of certificate [{fqdn}] in master were not read"
                ));
            }
            Some(true) => return Outcome::Pass,
            Some(false) => format!(
                "certificate [{fqdn}] in master is not the managed instance's current endpoint \
                 certificate"
            ),
        },
        None if same_bytes.is_empty() => return Outcome::Pass,
        None => format!(
            "the managed instance's certificate is in master as {}, not under its FQDN {fqdn}",
            list(&same_bytes)
        ),
    };
    let mut ev = Evidence::new(problem).with("expected name", fqdn);
    if let Some(c) = named {
        ev = ev.with("thumbprint in master", &c.thumbprint);
    }
    if !same_bytes.is_empty() {
        ev = ev.with("holding the instance's certificate", list(&same_bytes));
    }
    Outcome::Fail(
        ev,
        Fix::action(format!(
            "Drop the stale certificate from master (after checking no endpoint uses it) and \
             import the current one from endpointCertificates/DATABASE_MIRRORING as \
             CREATE CERTIFICATE [{fqdn}] FROM BINARY = 0x…; milink does this while exchanging \
             trust when no certificate of that name exists."
        )),
    )
}

const ROOT_CA_TRUST: Rule = rule!(
    "Link.RootCaTrust",
    Warning,
    Instance,
    "Azure root CAs are trusted",
    F14,
    "the certificates in master against the Azure root CAs' DER (MicrosoftPKI, DigiCertPKI), by bytes when CERTENCODED was read, else by name or subject; the issuer registration of sp_certificate_add_issuer is not visible in a catalog view",
    Instance(root_ca_trust)
);
/// The Azure root CAs SQL Server must trust for `*.database.windows.net` (milink-facts §1.4
/// (e)). When the certificates' bytes were read, a root counts as present only when master
/// holds its exact certificate (a certificate with the root's name and other bytes is
/// reported); the name binding of `sp_certificate_add_issuer` has no catalog view.
fn root_ca_trust(ctx: &Context<'_>) -> Outcome {
    let certs = &ctx.instance.certificates;
    let bytes_known = !certs.is_empty() && certs.iter().all(|c| c.encoded.is_some());
    let mut missing: Vec<String> = Vec::new();
    let mut impostors: Vec<String> = Vec::new();
    let subjects = azure_root_cas();
    for (name, der) in crate::sqlserver::certs::azure_root_ca_certificates() {
        let subject = subjects
            .iter()
            .find(|(n, _)| n == &name)
            .map_or("", |(_, s)| *s);
        if bytes_known {
            if certs.iter().any(|c| c.is(&der) == Some(true)) {
                continue;
            }
            if let Some(c) = ctx.instance.certificate(name.as_str()) {
                impostors.push(c.name.clone());
            }
            missing.push(name.to_string());
        } else if !certs.iter().any(|c| {
            c.name.eq_ignore_ascii_case(name.as_str())
                || (!subject.is_empty() && c.subject.contains(subject))
        }) {
            missing.push(name.to_string());
        }
    }
    if missing.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "master does not hold the Azure root CA certificate(s) {}",
        list(&missing)
    ))
    .with("missing", list(&missing));
    if !impostors.is_empty() {
        ev = ev.with(
            "named like a root CA but holding another certificate",
            list(&impostors),
        );
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "milink imports them while exchanging trust (CREATE CERTIFICATE … FROM BINARY and \
             sp_certificate_add_issuer for N'*.database.windows.net'); the certificate blobs \
             come from the Azure Certificate Authority details page or the Arc download. A \
             certificate that has a root CA's name but other bytes must be dropped first.",
        ),
    )
}
