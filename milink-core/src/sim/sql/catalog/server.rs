//! The server's own views: properties, databases, certificates and keys in `master`, system
//! objects, endpoints, host and configuration, the managed instance's fabric parameters, and
//! `msdb.dbo.backupset`.

use crate::lifecycle::Side;
use crate::names::UpdatePolicy;
use crate::sim::World;
use crate::sim::lab::RecoveryModel;
use crate::sim::tds::{ResultSet, SqlType, Value};
use crate::sim::world::{BackupKind, DbState};
use crate::time::Timestamp;

use super::{DESC, SYSNAME, TableBuilder, opt_s, s};

/// The product version a managed instance reports (`SERVERPROPERTY('ProductVersion')`).
pub const MI_PRODUCT_VERSION: &str = "12.0.2000.8";

/// The system databases, with their ids.
const SYSTEM_DATABASES: [(&str, i32); 4] =
    [("master", 1), ("tempdb", 2), ("model", 3), ("msdb", 4)];

/// The first id of the instance's user databases (the managed instance's databases have no id
/// in the world: they are numbered from here in name order).
const FIRST_USER_DATABASE_ID: i32 = 5;

/// The first `certificate_id` (certificates are numbered in name order).
const FIRST_CERTIFICATE_ID: i32 = 256;

/// `@@SERVERNAME`: SQL Server's name, or the managed instance's name.
pub fn server_name(world: &World, side: Side) -> String {
    match side {
        Side::SqlServer => world.source.server.to_string(),
        Side::ManagedInstance => world.instance.fqdn.instance_name().to_owned(),
    }
}

/// `@@VERSION`, naming the edition and host as SQL Server does.
pub fn version_text(world: &World, side: Side) -> String {
    match side {
        Side::SqlServer => format!(
            "Microsoft SQL Server {} - {} (X64) \n\tCopyright (C) Microsoft Corporation\n\t{} \
             Edition (64-bit) on {} <X64>",
            world.source.version.major,
            world.source.version,
            world.source.edition,
            world.source.host.description
        ),
        Side::ManagedInstance => format!(
            "Microsoft SQL Azure (RTM) - {MI_PRODUCT_VERSION} \n\tCopyright (C) Microsoft \
             Corporation\n"
        ),
    }
}

/// `SERVERPROPERTY(name)`; NULL for a property it does not know, as SQL Server.
pub fn server_property(world: &World, side: Side, name: &str) -> Value {
    let src = &world.source;
    match (side, name.to_ascii_lowercase().as_str()) {
        (Side::SqlServer, "productversion") => s(src.version.to_string()),
        (Side::SqlServer, "productmajorversion") => s(src.version.major.to_string()),
        (Side::SqlServer, "productupdatelevel") => opt_s(
            src.static_facts
                .as_ref()
                .and_then(|f| f.update_level.clone()),
        ),
        (Side::SqlServer, "edition") => s(format!("{} Edition (64-bit)", src.edition)),
        (Side::SqlServer, "engineedition") => Value::Int(3),
        (Side::SqlServer, "ishadrenabled") => Value::Int(i32::from(src.hadr_enabled)),
        (Side::SqlServer, "collation") => s(src.collation.clone()),
        (Side::ManagedInstance, "productversion") => s(MI_PRODUCT_VERSION),
        (Side::ManagedInstance, "edition") => s("SQL Azure"),
        (Side::ManagedInstance, "engineedition") => Value::Int(8),
        (Side::ManagedInstance, "ishadrenabled") => Value::Int(1),
        (Side::ManagedInstance, "collation") => s(world.instance.collation.clone()),
        (Side::ManagedInstance, "productupdatetype") => s(match world.instance.update_policy {
            UpdatePolicy::AlwaysUpToDate => "Continuous",
            UpdatePolicy::SqlServer2022 | UpdatePolicy::SqlServer2025 => "CU",
        }),
        (_, "servername" | "machinename") => s(server_name(world, side)),
        _ => Value::Null,
    }
}

/// The user databases of `side` with their ids, in name order.
fn user_databases(world: &World, side: Side) -> Vec<(String, i32)> {
    match side {
        Side::SqlServer => world
            .source
            .databases
            .iter()
            .map(|(n, d)| (n.to_string(), d.database_id))
            .collect(),
        Side::ManagedInstance => world
            .instance
            .databases
            .keys()
            .zip(FIRST_USER_DATABASE_ID..)
            .map(|(n, id)| (n.to_string(), id))
            .collect(),
    }
}

/// `DB_ID(name)`: the id of a database of `side` (system databases included).
pub fn database_id(world: &World, side: Side, name: &str) -> Option<i32> {
    SYSTEM_DATABASES
        .iter()
        .map(|(n, id)| ((*n).to_owned(), *id))
        .chain(user_databases(world, side))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, id)| id)
}

/// `DB_NAME(id)`.
pub fn database_name(world: &World, side: Side, id: i32) -> Option<String> {
    SYSTEM_DATABASES
        .iter()
        .map(|(n, i)| ((*n).to_owned(), *i))
        .chain(user_databases(world, side))
        .find(|(_, i)| *i == id)
        .map(|(n, _)| n)
}

/// `sys.databases`: `name`, `database_id`, `state_desc`, `recovery_model_desc`.
pub fn databases(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("name", SYSNAME),
        ("database_id", SqlType::Int),
        ("state_desc", DESC),
        ("recovery_model_desc", DESC),
    ]);
    for (n, id) in SYSTEM_DATABASES {
        let recovery = if n == "tempdb" || n == "master" {
            "SIMPLE"
        } else {
            "FULL"
        };
        t.row(vec![s(n), Value::Int(id), s("ONLINE"), s(recovery)]);
    }
    let state = |st: DbState| match st {
        DbState::Online => "ONLINE",
        DbState::Restoring => "RESTORING",
    };
    for (name, id) in user_databases(world, side) {
        let (st, recovery) = match side {
            Side::SqlServer => {
                let d = world
                    .source
                    .databases
                    .iter()
                    .find(|(n, _)| n.as_str() == name)
                    .map(|(_, d)| d);
                (
                    d.map_or(DbState::Online, |d| d.state),
                    match d.map(|d| d.facts.recovery_model) {
                        Some(RecoveryModel::Simple) => "SIMPLE",
                        Some(RecoveryModel::BulkLogged) => "BULK_LOGGED",
                        _ => "FULL",
                    },
                )
            }
            Side::ManagedInstance => (
                world
                    .instance
                    .databases
                    .iter()
                    .find(|(n, _)| n.as_str() == name)
                    .map_or(DbState::Online, |(_, d)| d.state),
                "FULL",
            ),
        };
        t.row(vec![s(name), Value::Int(id), s(state(st)), s(recovery)]);
    }
    t.build()
}

/// A certificate of `master` as the catalog shows it.
struct Cert {
    id: i32,
    name: String,
    subject: Option<String>,
    expiry: Option<Timestamp>,
    der: Vec<u8>,
    private_key: bool,
}

fn certs(world: &World, side: Side) -> Vec<Cert> {
    match side {
        Side::SqlServer => world
            .source
            .certificates
            .values()
            .zip(FIRST_CERTIFICATE_ID..)
            .map(|(c, id)| Cert {
                id,
                name: c.name.clone(),
                subject: c.subject.clone(),
                expiry: c.expiry.map(crate::time::Date::start),
                der: c.der.clone(),
                private_key: c.has_private_key,
            })
            .collect(),
        // The server trust certificates (the managed instance's own endpoint certificate is
        // not in its catalog here).
        Side::ManagedInstance => world
            .instance
            .trust_certificates
            .iter()
            .zip(FIRST_CERTIFICATE_ID..)
            .map(|((name, der), id)| Cert {
                id,
                name: name.clone(),
                subject: None,
                expiry: None,
                der: der.clone(),
                private_key: false,
            })
            .collect(),
    }
}

/// `CERT_ID(name)` in `master`.
pub fn certificate_id(world: &World, side: Side, name: &str) -> Option<i32> {
    certs(world, side)
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .map(|c| c.id)
}

/// `CERTENCODED(id)`: the certificate's DER.
pub fn certificate_der(world: &World, side: Side, id: i32) -> Option<Vec<u8>> {
    certs(world, side)
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.der)
}

/// A 20-byte digest standing for the SHA-1 thumbprint.
fn thumbprint(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8..3 {
        for b in der.iter().chain(std::iter::once(&round)) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.extend_from_slice(&h.to_be_bytes());
    }
    out.truncate(20);
    out
}

/// `sys.certificates` (of `master`).
pub fn certificates(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("certificate_id", SqlType::Int),
        ("name", SYSNAME),
        ("subject", SqlType::NVarChar(Some(4000))),
        ("issuer_name", SqlType::NVarChar(Some(442))),
        ("pvt_key_encryption_type_desc", DESC),
        ("start_date", SqlType::DateTime),
        ("expiry_date", SqlType::DateTime),
        ("thumbprint", SqlType::VarBinary(Some(32))),
    ]);
    let roots = crate::tsql::azure_root_cas();
    // A certificate created without an expiry date gets SQL Server's far default here.
    let far = crate::time::Date::new(9999, 12, 31)
        .map(crate::time::Date::start)
        .ok();
    for c in certs(world, side) {
        let subject = c
            .subject
            .clone()
            .or_else(|| {
                roots
                    .iter()
                    .find(|(n, _)| n.as_str() == c.name)
                    .map(|(_, s)| format!("CN={s}"))
            })
            .unwrap_or_else(|| format!("CN={}", c.name));
        t.row(vec![
            Value::Int(c.id),
            s(c.name),
            s(subject.clone()),
            s(subject),
            s(if c.private_key {
                "ENCRYPTED_BY_MASTER_KEY"
            } else {
                "NO_PRIVATE_KEY"
            }),
            Value::Null,
            c.expiry.or(far).map_or(Value::Null, Value::DateTime),
            Value::Binary(thumbprint(&c.der)),
        ]);
    }
    t.build()
}

/// `sys.symmetric_keys` (of `master`): the service master key, and the database master key
/// (id 101) where it exists.
pub fn symmetric_keys(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[("name", SYSNAME), ("symmetric_key_id", SqlType::Int)]);
    let master_key = match side {
        Side::SqlServer => world.source.master_key,
        Side::ManagedInstance => true,
    };
    if master_key {
        t.row(vec![s("##MS_DatabaseMasterKey##"), Value::Int(101)]);
    }
    t.row(vec![s("##MS_ServiceMasterKey##"), Value::Int(102)]);
    t.build()
}

/// `sys.all_objects`: a few system procedures, `sp_certificate_add_issuer` only on builds that
/// support the link (always on the managed instance).
pub fn all_objects(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("name", SYSNAME),
        ("object_id", SqlType::Int),
        ("schema_id", SqlType::Int),
        ("type", SqlType::VarChar(Some(2))),
    ]);
    let add_issuer = match side {
        Side::SqlServer => world.source.version.capabilities().link_supported,
        Side::ManagedInstance => true,
    };
    let mut procs = vec![("sp_executesql", -1), ("sp_configure", -2), ("sp_who", -3)];
    if add_issuer {
        procs.push(("sp_certificate_add_issuer", -4));
    }
    for (n, id) in procs {
        t.row(vec![s(n), Value::Int(id), Value::Int(4), s("P")]);
    }
    t.build()
}

/// The mirroring endpoint's id.
const MIRRORING_ENDPOINT_ID: i32 = 65536;

/// `sys.database_mirroring_endpoints`.
pub fn mirroring_endpoints(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("endpoint_id", SqlType::Int),
        ("name", SYSNAME),
        ("state_desc", DESC),
        ("role_desc", DESC),
        ("connection_auth_desc", DESC),
        ("is_encryption_enabled", SqlType::Bit),
        ("encryption_algorithm_desc", DESC),
        ("certificate_id", SqlType::Int),
    ]);
    if let (Side::SqlServer, Some(e)) = (side, &world.source.endpoint) {
        let cert = e
            .certificate
            .as_ref()
            .and_then(|c| certificate_id(world, side, c.as_str()));
        t.row(vec![
            Value::Int(MIRRORING_ENDPOINT_ID),
            s(e.name.to_string()),
            s(if e.started { "STARTED" } else { "STOPPED" }),
            s("ALL"),
            s(if e.certificate.is_some() {
                "CERTIFICATE"
            } else {
                "WINDOWS_NEGOTIATE"
            }),
            Value::Bit(e.aes),
            s(if e.aes { "AES" } else { "NONE" }),
            cert.map_or(Value::Null, Value::Int),
        ]);
    }
    t.build()
}

/// `sys.tcp_endpoints`: the default T-SQL endpoint and the mirroring endpoint.
pub fn tcp_endpoints(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("endpoint_id", SqlType::Int),
        ("name", SYSNAME),
        ("type_desc", DESC),
        ("port", SqlType::Int),
        ("ip_address", SqlType::NVarChar(Some(45))),
    ]);
    t.row(vec![
        Value::Int(4),
        s("TSQL Default TCP"),
        s("TSQL"),
        Value::Int(0),
        Value::Null,
    ]);
    if let (Side::SqlServer, Some(e)) = (side, &world.source.endpoint) {
        t.row(vec![
            Value::Int(MIRRORING_ENDPOINT_ID),
            s(e.name.to_string()),
            s("DATABASE_MIRRORING"),
            Value::Int(i32::from(e.port.get())),
            Value::Null,
        ]);
    }
    t.build()
}

/// `sys.dm_os_sys_info`: `cpu_count`, `physical_memory_kb`.
pub fn sys_info(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("cpu_count", SqlType::Int),
        ("physical_memory_kb", SqlType::BigInt),
    ]);
    let (cpus, memory_mb) = match side {
        Side::SqlServer => (world.source.cores, world.source.memory_mb),
        // 5.1 GB per vCore (standard-series).
        Side::ManagedInstance => (
            world.instance.vcores,
            u64::from(world.instance.vcores) * 5222,
        ),
    };
    t.row(vec![
        Value::Int(i32::try_from(cpus).unwrap_or(i32::MAX)),
        Value::BigInt(i64::try_from(memory_mb.saturating_mul(1024)).unwrap_or(i64::MAX)),
    ]);
    t.build()
}

/// `sys.dm_hadr_cluster`: the failover cluster SQL Server runs on, when its facts name one (the
/// simulated servers use `CLUSTER_TYPE = NONE` availability groups and need none).
pub fn hadr_cluster(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[("cluster_name", SYSNAME), ("quorum_type_desc", DESC)]);
    if let Some(name) = world.instance_facts().cluster.and_then(|c| c.name)
        && side == Side::SqlServer
    {
        t.row(vec![s(name), s("NODE_MAJORITY")]);
    }
    t.build()
}

/// `sys.server_permissions`: `CONNECT SQL` granted to every login of
/// [`server_principals`], and on SQL Server the permissions the facts give
/// `NT AUTHORITY\SYSTEM`.
pub fn server_permissions(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("class", SqlType::TinyInt),
        ("grantee_principal_id", SqlType::Int),
        ("permission_name", SYSNAME),
        ("state", SqlType::VarChar(Some(1))),
        ("state_desc", DESC),
    ]);
    let principals = server_principals(world, side);
    let (Some(id_col), Some(name_col)) = (
        principals
            .columns
            .iter()
            .position(|c| c.name == "principal_id"),
        principals.columns.iter().position(|c| c.name == "name"),
    ) else {
        return t.build();
    };
    let system = world
        .instance_facts()
        .cluster
        .map(|c| c.system_permissions)
        .unwrap_or_default();
    for row in &principals.rows {
        let (Some(id), Some(name)) = (row.get(id_col), row.get(name_col)) else {
            continue;
        };
        let is_system =
            matches!(name, Value::String(n) if n.eq_ignore_ascii_case("NT AUTHORITY\\SYSTEM"));
        let mut granted = vec!["CONNECT SQL".to_owned()];
        if is_system && side == Side::SqlServer {
            granted.extend(system.iter().filter(|p| *p != "CONNECT SQL").cloned());
        }
        for p in granted {
            t.row(vec![
                Value::TinyInt(100),
                id.clone(),
                s(p),
                s("G"),
                s("GRANT"),
            ]);
        }
    }
    t.build()
}

/// `sys.dm_server_registry`: the service's startup parameters (`SQLArg0`–`2`, then a `-T` for
/// each global trace flag: the simulated server's flags are its startup configuration).
pub fn server_registry(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("registry_key", SqlType::NVarChar(Some(256))),
        ("value_name", SqlType::NVarChar(Some(256))),
        ("value_data", SqlType::NVarChar(Some(512))),
    ]);
    if side == Side::SqlServer {
        let key = "HKLM\\Software\\Microsoft\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQLServer\\Parameters";
        let mut args = vec![
            "-dC:\\MSSQL\\DATA\\master.mdf".to_owned(),
            "-eC:\\MSSQL\\Log\\ERRORLOG".to_owned(),
            "-lC:\\MSSQL\\DATA\\mastlog.ldf".to_owned(),
        ];
        args.extend(world.source.trace_flags.iter().map(|f| format!("-T{f}")));
        for (i, a) in args.into_iter().enumerate() {
            t.row(vec![s(key), s(format!("SQLArg{i}")), s(a)]);
        }
    }
    t.build()
}

/// `sys.configurations` (`value` and `value_in_use` are `sql_variant`: here `bigint`).
pub fn configurations(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("configuration_id", SqlType::Int),
        ("name", SqlType::NVarChar(Some(35))),
        ("value", SqlType::BigInt),
        ("value_in_use", SqlType::BigInt),
    ]);
    let max_memory = match side {
        Side::SqlServer => world.source.max_server_memory_mb,
        Side::ManagedInstance => u64::from(world.instance.vcores) * 5222,
    };
    let max_memory = i64::try_from(max_memory).unwrap_or(i64::MAX);
    let rows: [(i32, &str, i64); 3] = [
        (518, "show advanced options", 0),
        (1544, "max server memory (MB)", max_memory),
        (1548, "awe enabled", 0),
    ];
    for (id, n, v) in rows {
        t.row(vec![
            Value::Int(id),
            s(n),
            Value::BigInt(v),
            Value::BigInt(v),
        ]);
    }
    t.build()
}

/// The managed instance's HADR port: 11000–11999, fixed per instance name.
pub fn hadr_port(world: &World) -> u16 {
    let h = world
        .instance
        .fqdn
        .as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    11000 + u16::try_from(h % 1000).unwrap_or(0)
}

/// `sys.dm_hadr_fabric_config_parameters`: `HadrPort` and `DnsRecordName` on the managed
/// instance; no rows on SQL Server.
pub fn fabric_config_parameters(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("parameter_name", SqlType::NVarChar(Some(256))),
        ("value", SqlType::NVarChar(Some(4000))),
    ]);
    if side == Side::ManagedInstance {
        t.row(vec![s("HadrPort"), s(hadr_port(world).to_string())]);
        t.row(vec![
            s("DnsRecordName"),
            s(world.instance.fqdn.as_str().to_owned()),
        ]);
    }
    t.build()
}

/// `msdb.dbo.backupset`: the managed instance's automatic backups finished by now (start one
/// minute before the finish); on SQL Server, the last log backup of each database.
pub fn backupset(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("backup_set_id", SqlType::Int),
        ("database_name", SqlType::NVarChar(Some(128))),
        ("type", SqlType::VarChar(Some(1))),
        ("backup_start_date", SqlType::DateTime),
        ("backup_finish_date", SqlType::DateTime),
        ("is_copy_only", SqlType::Bit),
    ]);
    let started = |f: Timestamp| Timestamp::from_millis(f.as_millis().saturating_sub(60_000));
    let records: Vec<(String, &str, Timestamp)> = match side {
        Side::ManagedInstance => world
            .instance
            .backups
            .iter()
            .filter(|b| b.finished <= world.now)
            .map(|b| {
                let kind = match b.kind {
                    BackupKind::Full => "D",
                    BackupKind::Log => "L",
                };
                (b.database.to_string(), kind, b.finished)
            })
            .collect(),
        Side::SqlServer => world
            .source
            .databases
            .iter()
            .filter_map(|(n, d)| d.last_log_backup.map(|f| (n.to_string(), "L", f)))
            .collect(),
    };
    for ((db, kind, finished), id) in records.into_iter().zip(1..) {
        t.row(vec![
            Value::Int(id),
            s(db),
            s(kind),
            Value::DateTime(started(finished)),
            Value::DateTime(finished),
            Value::Bit(false),
        ]);
    }
    t.build()
}

/// A deterministic SID for a Windows principal (`S-1-5-21-…` shaped: revision 1, five
/// sub-authorities), from its name compared case-insensitively; `salt` keeps an orphaned
/// user's SID apart from every login's.
fn windows_sid(salt: &str, name: &str) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0]).chain(name.to_lowercase().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut sid = vec![1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
    for i in 0..4u32 {
        let part = u32::try_from((h.rotate_left(i * 16)) & 0xffff_ffff).unwrap_or(0);
        sid.extend_from_slice(&part.to_le_bytes());
    }
    sid
}

/// The Windows logins of SQL Server: the instance's facts, and the login of every Windows
/// database user that maps to one (a user maps to an existing login), as (name, group,
/// disabled).
fn windows_logins(world: &World) -> Vec<(String, bool, bool)> {
    let mut logins: Vec<(String, bool, bool)> = world
        .instance_facts()
        .windows_logins
        .into_iter()
        .map(|l| (l.name, l.is_group, l.is_disabled))
        .collect();
    for d in world.database_facts() {
        for u in d.catalog.and_then(|c| c.windows_users).unwrap_or_default() {
            if let Some(login) = u.login
                && !logins
                    .iter()
                    .any(|(n, _, _)| n.eq_ignore_ascii_case(&login))
            {
                logins.push((login, u.is_group, false));
            }
        }
    }
    logins
}

/// `sys.server_principals`: `sa` and, on SQL Server, the Windows logins and groups
/// ([`World::instance_facts`]'s, and those the Windows database users map to).
pub fn server_principals(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("principal_id", SqlType::Int),
        ("name", SYSNAME),
        ("sid", SqlType::VarBinary(Some(85))),
        ("type", SqlType::VarChar(Some(1))),
        ("type_desc", DESC),
        ("is_disabled", SqlType::Bit),
    ]);
    t.row(vec![
        Value::Int(1),
        s("sa"),
        Value::Binary(vec![1]),
        s("S"),
        s("SQL_LOGIN"),
        Value::Bit(false),
    ]);
    if side == Side::SqlServer {
        for ((name, group, disabled), id) in windows_logins(world).into_iter().zip(256..) {
            let (kind, desc) = if group {
                ("G", "WINDOWS_GROUP")
            } else {
                ("U", "WINDOWS_LOGIN")
            };
            let sid = windows_sid("login", &name);
            t.row(vec![
                Value::Int(id),
                s(name),
                Value::Binary(sid),
                s(kind),
                s(desc),
                Value::Bit(disabled),
            ]);
        }
    }
    t.build()
}

/// `sys.database_principals` of database `db`: the fixed principals (`public`, `dbo`, `guest`,
/// `INFORMATION_SCHEMA`, `sys`) and, on SQL Server, the database's Windows users and groups
/// ([`World::database_facts`]' catalog), each with its login's SID, or one no login has when
/// the user is orphaned.
pub fn database_principals(world: &World, side: Side, db: &str) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("principal_id", SqlType::Int),
        ("name", SYSNAME),
        ("type", SqlType::VarChar(Some(1))),
        ("type_desc", DESC),
        ("authentication_type", SqlType::Int),
        ("authentication_type_desc", DESC),
        ("sid", SqlType::VarBinary(Some(85))),
    ]);
    // dbo maps to `sa` (SID 0x01), guest has SID 0x00, the others none.
    let fixed = [
        (0, "public", "R", "DATABASE_ROLE", 0, "NONE"),
        (1, "dbo", "S", "SQL_USER", 1, "INSTANCE"),
        (2, "guest", "S", "SQL_USER", 0, "NONE"),
        (3, "INFORMATION_SCHEMA", "S", "SQL_USER", 0, "NONE"),
        (4, "sys", "S", "SQL_USER", 0, "NONE"),
    ];
    for (id, name, kind, desc, auth, auth_desc) in fixed {
        let sid = match id {
            1 => Some(vec![1u8]),
            2 => Some(vec![0u8]),
            _ => None,
        };
        t.row(vec![
            Value::Int(id),
            s(name),
            s(kind),
            s(desc),
            Value::Int(auth),
            s(auth_desc),
            sid.map_or(Value::Null, Value::Binary),
        ]);
    }
    if side == Side::SqlServer {
        let users = world
            .database_facts()
            .into_iter()
            .find(|d| d.name.as_str().eq_ignore_ascii_case(db))
            .and_then(|d| d.catalog)
            .and_then(|c| c.windows_users)
            .unwrap_or_default();
        for (u, id) in users.into_iter().zip(5..) {
            let (kind, desc) = if u.is_group {
                ("G", "WINDOWS_GROUP")
            } else {
                ("U", "WINDOWS_USER")
            };
            let sid = match &u.login {
                Some(login) => windows_sid("login", login),
                None => windows_sid(&format!("orphan {db}"), &u.name),
            };
            t.row(vec![
                Value::Int(id),
                s(u.name),
                s(kind),
                s(desc),
                Value::Int(3),
                s("WINDOWS"),
                Value::Binary(sid),
            ]);
        }
    }
    t.build()
}
