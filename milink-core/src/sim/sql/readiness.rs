//! The readiness probes (`tsql::readiness`), answered from the world's own facts.
//!
//! Several probes reach their one result set through what the query engine does not evaluate
//! (a table variable filled by `INSERT … EXEC (DBCC …)`, a temporary table filled by a cursor
//! over `sp_executesql` in every database) or read views the catalog does not build
//! (`msdb.dbo.sysjobs`, `sys.servers`, `sys.master_files`, `sys.database_recovery_status`, …).
//! A batch the handler cannot answer otherwise is recognised here as a probe by the first
//! table (or table variable) after a `FROM`, as written — `@flags`, `msdb.dbo.sysjobs`,
//! `sys.databases` (with `sys.database_recovery_status`: link batches read `sys.databases`
//! first too), `sys.filegroups` (inside the catalog batch's per-database text), … — never by
//! comparing it with milink's builders, and answered with the columns the probe documents,
//! typed as documented, from [`World::instance_facts`] and [`World::database_facts`]: what the
//! in-process assessment reads. Gathering over TDS therefore gives the in-process facts.
//!
//! What the world does not keep is not invented: module text (`[db].sys.sql_modules`) is not
//! answered here (the catalog has no such view: error 208, so a gather reports the databases'
//! code as not scanned, as in process when the world has no code facts), and a job step's
//! command text is not kept, so its markers are not read back.

use crate::assess::{DatabaseFacts, DatabaseState, InstanceFacts};
use crate::sim::World;
use crate::sim::tds::{ResultSet, SqlType, Value};
use crate::tsql::readiness;

use super::catalog::{SYSNAME, TableBuilder, opt_s, s};

/// The readiness probe a batch is, among those the query engine cannot evaluate, by the first
/// table after its first `FROM`; `None` for any other batch. (The instance properties, the
/// mirroring endpoints, the certificates and the Windows logins are plain queries over the
/// catalog views, which the query engine answers from the same world.)
pub fn probe_of(sql: &str) -> Option<&'static str> {
    let table = first_table(sql)?.to_ascii_lowercase();
    Some(match table.as_str() {
        // Link batches read `sys.databases` first too (the workload's sessions); the databases
        // probe is the one that also reads each database's log chain.
        "sys.databases"
            if !sql
                .to_ascii_lowercase()
                .contains("sys.database_recovery_status") =>
        {
            return None;
        }
        "@flags" => readiness::TRACE_FLAGS,
        "msdb.dbo.sysjobs" => readiness::AGENT_JOB_STEPS,
        "sys.servers" => readiness::LINKED_SERVERS,
        "sys.databases" => readiness::DATABASES,
        "sys.master_files" => readiness::DATABASE_FILES,
        "sys.filegroups" => readiness::DATABASE_CATALOG,
        _ => return None,
    })
}

/// The first table after a `FROM` (whole word, any case), as written: `sys.configurations`,
/// `@flags`, `Cust]360.sys.sql_modules` (brackets removed, `]]` read as `]`).
pub fn first_table(sql: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut at = 0;
    while let Some(i) = upper[at..].find("FROM") {
        let start = at + i;
        at = start + 4;
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after_ok = bytes.get(at).is_some_and(u8::is_ascii_whitespace);
        if !(before_ok && after_ok) {
            continue;
        }
        let rest = sql[at..].trim_start();
        let mut name = String::new();
        let mut in_bracket = false;
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if in_bracket {
                if c != ']' {
                    name.push(c);
                } else if chars.peek() == Some(&']') {
                    chars.next();
                    name.push(']');
                } else {
                    in_bracket = false;
                }
            } else if c == '[' {
                in_bracket = true;
            } else if c.is_whitespace() || matches!(c, ';' | '(' | ')' | ',') {
                break;
            } else {
                name.push(c);
            }
        }
        if !name.is_empty() {
            return Some(name);
        }
    }
    None
}

/// The answer to the probe `purpose` from the world's facts (SQL Server's side).
pub fn answer(world: &World, purpose: &str) -> Option<ResultSet> {
    let instance = world.instance_facts();
    let databases = world.database_facts();
    Some(match purpose {
        p if p == readiness::TRACE_FLAGS => trace_flags(&instance),
        p if p == readiness::AGENT_JOB_STEPS => agent_job_steps(&instance),
        p if p == readiness::LINKED_SERVERS => linked_servers(&instance),
        p if p == readiness::DATABASES => self::databases(&databases),
        p if p == readiness::DATABASE_FILES => database_files(&databases),
        p if p == readiness::DATABASE_CATALOG => database_catalog(&databases),
        _ => return None,
    })
}

const NV: SqlType = SqlType::NVarChar(Some(4000));
const NVMAX: SqlType = SqlType::NVarChar(None);

fn int(v: impl TryInto<i32>) -> Value {
    Value::Int(v.try_into().unwrap_or(i32::MAX))
}

fn big(v: impl TryInto<i64>) -> Value {
    Value::BigInt(v.try_into().unwrap_or(i64::MAX))
}

fn ms(t: Option<crate::time::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| big(t.as_millis()))
}

fn hex_bytes(hex: &str) -> Value {
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    bytes.map_or(Value::Null, Value::Binary)
}

fn trace_flags(i: &InstanceFacts) -> ResultSet {
    let mut t = TableBuilder::new(&[("trace_flag", SqlType::Int), ("is_enabled", SqlType::Bit)]);
    let mut flags = i.trace_flags.clone();
    flags.sort_by_key(|f| f.flag);
    for f in flags {
        t.row(vec![int(f.flag), Value::Bit(f.enabled)]);
    }
    t.build()
}

fn agent_job_steps(i: &InstanceFacts) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("job_name", SYSNAME),
        ("job_enabled", SqlType::Bit),
        ("step_id", SqlType::Int),
        ("step_name", SYSNAME),
        ("subsystem", SqlType::NVarChar(Some(40))),
        ("command", NVMAX),
    ]);
    for j in &i.job_steps {
        t.row(vec![
            s(j.job.clone()),
            Value::Bit(j.job_enabled),
            int(j.step_id),
            s(j.step.clone()),
            s(j.subsystem.clone()),
            // The world keeps no command text.
            Value::Null,
        ]);
    }
    t.build()
}

fn linked_servers(i: &InstanceFacts) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("name", SYSNAME),
        ("product", SYSNAME),
        ("provider", SYSNAME),
        ("data_source", NV),
    ]);
    for l in &i.linked_servers {
        t.row(vec![
            s(l.name.clone()),
            s(l.product.clone()),
            s(l.provider.clone()),
            s(l.data_source.clone()),
        ]);
    }
    t.build()
}

fn state_desc(state: DatabaseState) -> &'static str {
    match state {
        DatabaseState::Online => "ONLINE",
        DatabaseState::Restoring => "RESTORING",
        DatabaseState::Recovering => "RECOVERING",
        DatabaseState::RecoveryPending => "RECOVERY_PENDING",
        DatabaseState::Suspect => "SUSPECT",
        DatabaseState::Emergency => "EMERGENCY",
        DatabaseState::Offline => "OFFLINE",
        _ => "OFFLINE_SECONDARY",
    }
}

fn databases(dbs: &[DatabaseFacts]) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("database_id", SqlType::Int),
        ("name", SYSNAME),
        ("state_desc", super::catalog::DESC),
        ("recovery_model_desc", super::catalog::DESC),
        ("compatibility_level", SqlType::Int),
        ("collation_name", SYSNAME),
        ("is_broker_enabled", SqlType::Bit),
        ("is_cdc_enabled", SqlType::Bit),
        ("is_published", SqlType::Bit),
        ("is_subscribed", SqlType::Bit),
        ("is_merge_published", SqlType::Bit),
        ("is_distributor", SqlType::Bit),
        ("is_encrypted", SqlType::Bit),
        ("is_accelerated_database_recovery_on", SqlType::Bit),
        ("log_chain_established", SqlType::Bit),
        ("last_full_backup_ms", SqlType::BigInt),
        ("last_log_backup_ms", SqlType::BigInt),
        ("ag_name", SYSNAME),
        ("ag_database_count", SqlType::Int),
        ("tde_encryptor_type", SqlType::NVarChar(Some(32))),
        ("tde_certificate", SYSNAME),
        ("tde_thumbprint", SqlType::VarBinary(Some(32))),
        ("last_full_backup_checksum", SqlType::Bit),
        ("distributed_ag_name", SYSNAME),
    ]);
    for d in dbs {
        let tde = d.tde.as_ref();
        t.row(vec![
            int(d.database_id),
            s(d.name.to_string()),
            s(state_desc(d.state)),
            s(d.recovery_model.to_string()),
            int(d.compatibility_level),
            opt_s(d.collation.clone()),
            Value::Bit(d.broker_enabled),
            Value::Bit(d.cdc_enabled),
            Value::Bit(d.replication.published),
            Value::Bit(d.replication.subscribed),
            Value::Bit(d.replication.merge_published),
            Value::Bit(d.replication.distributor),
            Value::Bit(tde.is_some()),
            d.adr_enabled.map_or(Value::Null, Value::Bit),
            Value::Bit(d.log_chain_established),
            ms(d.last_full_backup),
            ms(d.last_log_backup),
            opt_s(d.ag.as_ref().map(|a| a.ag_name.clone())),
            d.ag.as_ref().map_or(Value::Null, |a| int(a.database_count)),
            opt_s(tde.map(|t| t.encryptor_type.clone())),
            opt_s(tde.and_then(|t| t.certificate.clone())),
            tde.and_then(|t| t.thumbprint.as_deref())
                .map_or(Value::Null, hex_bytes),
            d.last_full_backup_checksum.map_or(Value::Null, Value::Bit),
            opt_s(d.distributed_ag.clone()),
        ]);
    }
    t.build()
}

/// The `data_space_id`s of a database's FILESTREAM (`FD`) filegroups and its memory-optimized
/// (`FX`) filegroup: 2, 3, … in that order (1 is PRIMARY).
fn filegroup_spaces(d: &DatabaseFacts) -> (Vec<i64>, Option<i64>) {
    let Some(c) = d.catalog.as_ref() else {
        return (Vec::new(), None);
    };
    let fd: Vec<i64> = (0..c.filestream_filegroups.len())
        .map(|i| 2 + i64::try_from(i).unwrap_or(0))
        .collect();
    let fx = c
        .memory_optimized_filegroup
        .as_ref()
        .map(|_| 2 + i64::try_from(fd.len()).unwrap_or(0));
    (fd, fx)
}

/// Splits `total` MB over `n` files, the remainder on the first.
fn split(total: u64, n: usize) -> Vec<u64> {
    let n64 = u64::try_from(n.max(1)).unwrap_or(1);
    let each = total / n64;
    let mut sizes = vec![each; n.max(1)];
    sizes[0] += total - each * n64;
    sizes
}

fn database_files(dbs: &[DatabaseFacts]) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("database_id", SqlType::Int),
        ("file_id", SqlType::Int),
        ("type_desc", super::catalog::DESC),
        ("logical_name", SYSNAME),
        ("size_mb", SqlType::BigInt),
        ("data_space_id", SqlType::Int),
    ]);
    for d in dbs {
        let mut file_id = 1;
        let mut file = |t: &mut TableBuilder, ty: &str, name: String, mb: u64, space: i64| {
            t.row(vec![
                int(d.database_id),
                int(file_id),
                s(ty),
                s(name),
                big(mb),
                int(space),
            ]);
            file_id += 1;
        };
        let data_files = usize::try_from(d.data_files).unwrap_or(0);
        if data_files > 0 {
            for (n, mb) in split(d.data_size_mb, data_files).into_iter().enumerate() {
                let name = if n == 0 {
                    d.name.to_string()
                } else {
                    format!("{}_{}", d.name, n + 1)
                };
                file(&mut t, "ROWS", name, mb, 1);
            }
        }
        if !d.log_files.is_empty() {
            let sizes = split(d.log_size_mb, d.log_files.len());
            for (name, mb) in d.log_files.iter().zip(sizes) {
                file(&mut t, "LOG", name.clone(), mb, 0);
            }
        }
        let (fd, fx) = filegroup_spaces(d);
        if let Some(c) = d.catalog.as_ref() {
            // FILESTREAM containers in the first FILESTREAM filegroup, In-Memory OLTP
            // containers in the memory-optimized one.
            if let Some(space) = fd.first() {
                for n in 0..c.filestream_files {
                    file(
                        &mut t,
                        "FILESTREAM",
                        format!("{}_fs{}", d.name, n + 1),
                        0,
                        *space,
                    );
                }
            }
            if let Some(space) = fx {
                for n in 0..c.memory_optimized_files {
                    file(
                        &mut t,
                        "FILESTREAM",
                        format!("{}_mod{}", d.name, n + 1),
                        0,
                        space,
                    );
                }
            }
        }
    }
    t.build()
}

/// One row of the catalog probe: `database_id`, `item`, `name`, `detail`, `value`.
type CatalogRow = (i64, String, Option<String>, Option<String>, Option<i64>);

fn database_catalog(dbs: &[DatabaseFacts]) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("database_id", SqlType::Int),
        ("item", SqlType::VarChar(Some(32))),
        ("name", SqlType::NVarChar(Some(512))),
        ("detail", SqlType::NVarChar(Some(2048))),
        ("value", SqlType::BigInt),
    ]);
    let mut rows: Vec<CatalogRow> = Vec::new();
    for d in dbs {
        // The batch reads online databases only; a database the world has no catalog for was
        // not read.
        let Some(c) = d
            .catalog
            .as_ref()
            .filter(|_| d.state == DatabaseState::Online)
        else {
            continue;
        };
        let id = i64::from(d.database_id);
        let mut item =
            |item: &str, name: Option<String>, detail: Option<String>, v: Option<i64>| {
                rows.push((id, item.to_owned(), name, detail, v));
            };
        let (fd, fx) = filegroup_spaces(d);
        for (name, space) in c.filestream_filegroups.iter().zip(&fd) {
            item(
                "filegroup",
                Some(name.clone()),
                Some("FD".into()),
                Some(*space),
            );
        }
        if let (Some(name), Some(space)) = (&c.memory_optimized_filegroup, fx) {
            item(
                "filegroup",
                Some(name.clone()),
                Some("FX".into()),
                Some(space),
            );
        }
        item("filetables", None, None, Some(i64::from(c.filetables)));
        item(
            "memory_optimized_tables",
            None,
            None,
            Some(i64::from(c.memory_optimized_tables)),
        );
        item(
            "aliased_users",
            None,
            None,
            Some(i64::from(c.aliased_users)),
        );
        for a in &c.assemblies {
            item(
                "assembly",
                Some(a.name.clone()),
                Some(a.permission_set.clone()),
                None,
            );
        }
        for n in &c.objects_named_next {
            item("next_name", Some(n.clone()), None, None);
        }
        if let Some(pvs) = &c.pvs_filegroup {
            item("pvs_filegroup", Some(pvs.clone()), None, None);
        }
        for u in c.windows_users.iter().flatten() {
            let kind = if u.is_group {
                "windows_group"
            } else {
                "windows_user"
            };
            item(kind, Some(u.name.clone()), u.login.clone(), None);
        }
        item("catalog_read", None, None, None);
    }
    // ORDER BY database_id, item, name (NULLs first).
    rows.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    for (id, item, name, detail, value) in rows {
        t.row(vec![
            int(id),
            s(item),
            opt_s(name),
            opt_s(detail),
            value.map_or(Value::Null, Value::BigInt),
        ]);
    }
    t.build()
}

#[cfg(all(test, feature = "tds"))]
mod tests;
