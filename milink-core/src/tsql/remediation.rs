//! Remediation builders: the statements that fix what the readiness assessment finds on SQL
//! Server (recovery model, full backup, trace flags, Service Broker, accelerated database
//! recovery, extra files). milink-facts §1.3.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{DatabaseName, LogicalFileName, NameError, NameRule};
use crate::tsql::{Batch, SqlIdentifier, quote_nstring};

/// Where `BACKUP DATABASE` writes: a path or a bare file name on the SQL Server host.
///
/// A bare file name (no folder) lands in the instance's default backup directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BackupPath(String);

/// Longest backup path accepted (Windows `MAX_PATH` minus the terminator).
pub const BACKUP_PATH_MAX: usize = 259;

impl BackupPath {
    /// Validates a path: not empty, no control characters, at most [`BACKUP_PATH_MAX`]
    /// characters, no surrounding whitespace.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        let err = |rule| NameError::new_public("BackupPath", &value, rule);
        if value.is_empty() {
            return Err(err(NameRule::Empty));
        }
        let len = value.chars().count();
        if len > BACKUP_PATH_MAX {
            return Err(err(NameRule::TooLong {
                len,
                max: BACKUP_PATH_MAX,
            }));
        }
        if let Some(position) = value.chars().position(char::is_control) {
            return Err(err(NameRule::ControlCharacter { position }));
        }
        if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
            return Err(err(NameRule::SurroundingWhitespace));
        }
        Ok(BackupPath(value))
    }

    /// `<database>_milink_full.bak` in the instance's default backup directory. Characters that
    /// file systems refuse (`\ / : * ? " < > |`) become `_`.
    pub fn default_for(database: &DatabaseName) -> Self {
        let safe: String = database
            .as_str()
            .chars()
            .map(|c| {
                if matches!(c, '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let mut name = format!("{safe}_milink_full.bak");
        if name.chars().count() > BACKUP_PATH_MAX {
            name = name
                .chars()
                .skip(name.chars().count() - BACKUP_PATH_MAX)
                .collect();
        }
        BackupPath(name)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BackupPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BackupPath::new(s).map_err(serde::de::Error::custom)
    }
}

/// `ALTER DATABASE [db] SET RECOVERY FULL;` — the link needs the full recovery model.
///
/// A database switched from SIMPLE still needs a full backup afterwards to start the log chain
/// ([`backup_database_full`]).
pub fn set_recovery_full(database: &DatabaseName) -> Batch {
    Batch::new(
        "set recovery model FULL",
        format!("ALTER DATABASE {} SET RECOVERY FULL;", database.quoted()),
    )
}

/// `BACKUP DATABASE [db] TO DISK = N'path' WITH CHECKSUM;` — a full backup that starts the log
/// chain. Never `COPY_ONLY`: a copy-only backup does not start a chain (error 1475).
pub fn backup_database_full(database: &DatabaseName, path: &BackupPath) -> Batch {
    Batch::new(
        "full database backup",
        format!(
            "BACKUP DATABASE {} TO DISK = {} WITH CHECKSUM;",
            database.quoted(),
            quote_nstring(path.as_str())
        ),
    )
}

/// A trace flag the link workflow turns on (milink-facts §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LinkTraceFlag {
    /// 1800: AG log I/O across different disk sector sizes.
    LogIoSectorSize,
    /// 9567: compression of the automatic seeding stream.
    SeedingCompression,
    /// 12381: keeps the log from truncating during seeding while log backups continue
    /// (only on builds that support it; which build introduced it is unverified).
    SeedingLogTruncation,
}

impl LinkTraceFlag {
    /// The flag number.
    pub const fn number(self) -> u32 {
        match self {
            LinkTraceFlag::LogIoSectorSize => 1800,
            LinkTraceFlag::SeedingCompression => 9567,
            LinkTraceFlag::SeedingLogTruncation => 12381,
        }
    }
}

fn flag_list(flags: &[LinkTraceFlag]) -> String {
    let mut flags: Vec<LinkTraceFlag> = flags.to_vec();
    flags.sort();
    flags.dedup();
    flags
        .iter()
        .map(|f| f.number().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `DBCC TRACEON (flags, -1);` — turns the flags on globally until the next restart. Add them
/// as `-T` startup parameters too so they survive a restart. `None` when `flags` is empty.
pub fn trace_on_global(flags: &[LinkTraceFlag]) -> Option<Batch> {
    if flags.is_empty() {
        return None;
    }
    Some(Batch::new(
        "enable trace flags globally",
        format!("DBCC TRACEON ({}, -1);", flag_list(flags)),
    ))
}

/// `DBCC TRACEOFF (flags, -1);` — e.g. 12381 once seeding has finished. `None` when empty.
pub fn trace_off_global(flags: &[LinkTraceFlag]) -> Option<Batch> {
    if flags.is_empty() {
        return None;
    }
    Some(Batch::new(
        "disable trace flags globally",
        format!("DBCC TRACEOFF ({}, -1);", flag_list(flags)),
    ))
}

/// What an `ALTER DATABASE … SET` that needs exclusive access does with other sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Termination {
    /// Wait until the other sessions leave (plain `SET`).
    Wait,
    /// Fail at once if other sessions are connected (`WITH NO_WAIT`).
    #[default]
    NoWait,
    /// Roll back other sessions' transactions and disconnect them (`WITH ROLLBACK IMMEDIATE`).
    RollbackImmediate,
}

impl Termination {
    fn clause(self) -> &'static str {
        match self {
            Termination::Wait => "",
            Termination::NoWait => " WITH NO_WAIT",
            Termination::RollbackImmediate => " WITH ROLLBACK IMMEDIATE",
        }
    }
}

/// `ALTER DATABASE [db] SET ENABLE_BROKER …;` — Service Broker disabled on the source can't be
/// used on the managed instance after migration.
pub fn enable_broker(database: &DatabaseName, termination: Termination) -> Batch {
    Batch::new(
        "enable Service Broker",
        format!(
            "ALTER DATABASE {} SET ENABLE_BROKER{};",
            database.quoted(),
            termination.clause()
        ),
    )
}

/// `ALTER DATABASE [db] SET ACCELERATED_DATABASE_RECOVERY = ON
/// (PERSISTENT_VERSION_STORE_FILEGROUP = [PRIMARY]);` — ADR on, version store on PRIMARY
/// (a version store elsewhere breaks restores on the managed instance). SQL Server 2019+.
pub fn enable_accelerated_database_recovery(database: &DatabaseName) -> Batch {
    Batch::new(
        "enable accelerated database recovery",
        format!(
            "ALTER DATABASE {} SET ACCELERATED_DATABASE_RECOVERY = ON \
             (PERSISTENT_VERSION_STORE_FILEGROUP = [PRIMARY]);",
            database.quoted()
        ),
    )
}

/// `ALTER DATABASE [db] REMOVE FILE [name];` — e.g. an extra log file once it holds no active
/// log (back up the log until `DBCC LOGINFO`/`sys.dm_db_log_info` shows it inactive).
pub fn remove_file(database: &DatabaseName, file: &LogicalFileName) -> Batch {
    Batch::new(
        "remove a database file",
        format!(
            "ALTER DATABASE {} REMOVE FILE {};",
            database.quoted(),
            file.quoted()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> DatabaseName {
        DatabaseName::new(name).unwrap()
    }

    #[test]
    fn recovery_full_snapshot() {
        insta::assert_snapshot!(
            set_recovery_full(&db("Customer360")).expose_sql(),
            @"ALTER DATABASE [Customer360] SET RECOVERY FULL;"
        );
        insta::assert_snapshot!(
            set_recovery_full(&db("a]b")).expose_sql(),
            @"ALTER DATABASE [a]]b] SET RECOVERY FULL;"
        );
    }

    #[test]
    fn full_backup_snapshot_has_checksum_and_no_copy_only() {
        let b = backup_database_full(
            &db("Customer360"),
            &BackupPath::new(r"D:\Backups\O'Brien\Customer360.bak").unwrap(),
        );
        insta::assert_snapshot!(
            b.expose_sql(),
            @r"BACKUP DATABASE [Customer360] TO DISK = N'D:\Backups\O''Brien\Customer360.bak' WITH CHECKSUM;"
        );
        assert!(!b.expose_sql().contains("COPY_ONLY"));
        let d = backup_database_full(&db("Cust/360"), &BackupPath::default_for(&db("Cust/360")));
        insta::assert_snapshot!(
            d.expose_sql(),
            @"BACKUP DATABASE [Cust/360] TO DISK = N'Cust_360_milink_full.bak' WITH CHECKSUM;"
        );
    }

    #[test]
    fn backup_path_refuses_bad_values() {
        assert_eq!(BackupPath::new("").unwrap_err().rule, NameRule::Empty);
        assert!(matches!(
            BackupPath::new("x".repeat(260)).unwrap_err().rule,
            NameRule::TooLong { .. }
        ));
        assert_eq!(
            BackupPath::new("a\nb").unwrap_err().rule,
            NameRule::ControlCharacter { position: 1 }
        );
        assert_eq!(
            BackupPath::new(" a.bak").unwrap_err().rule,
            NameRule::SurroundingWhitespace
        );
        assert!(serde_json::from_str::<BackupPath>("\"\"").is_err());
        let long = db(&"x".repeat(128));
        assert!(BackupPath::default_for(&long).as_str().chars().count() <= BACKUP_PATH_MAX);
    }

    #[test]
    fn trace_flag_snapshots() {
        use LinkTraceFlag::*;
        insta::assert_snapshot!(
            trace_on_global(&[SeedingCompression, LogIoSectorSize, SeedingCompression]).unwrap().expose_sql(),
            @"DBCC TRACEON (1800, 9567, -1);"
        );
        insta::assert_snapshot!(
            trace_on_global(&[SeedingLogTruncation]).unwrap().expose_sql(),
            @"DBCC TRACEON (12381, -1);"
        );
        insta::assert_snapshot!(
            trace_off_global(&[SeedingLogTruncation]).unwrap().expose_sql(),
            @"DBCC TRACEOFF (12381, -1);"
        );
        assert!(trace_on_global(&[]).is_none());
        assert!(trace_off_global(&[]).is_none());
    }

    #[test]
    fn broker_snapshots() {
        let d = db("ToyStore");
        insta::assert_snapshot!(enable_broker(&d, Termination::NoWait).expose_sql(), @"ALTER DATABASE [ToyStore] SET ENABLE_BROKER WITH NO_WAIT;");
        insta::assert_snapshot!(enable_broker(&d, Termination::Wait).expose_sql(), @"ALTER DATABASE [ToyStore] SET ENABLE_BROKER;");
        insta::assert_snapshot!(enable_broker(&d, Termination::RollbackImmediate).expose_sql(), @"ALTER DATABASE [ToyStore] SET ENABLE_BROKER WITH ROLLBACK IMMEDIATE;");
    }

    #[test]
    fn adr_and_remove_file_snapshots() {
        insta::assert_snapshot!(
            enable_accelerated_database_recovery(&db("ToyStore")).expose_sql(),
            @"ALTER DATABASE [ToyStore] SET ACCELERATED_DATABASE_RECOVERY = ON (PERSISTENT_VERSION_STORE_FILEGROUP = [PRIMARY]);"
        );
        insta::assert_snapshot!(
            remove_file(&db("Customer360"), &LogicalFileName::new("Customer360_log2").unwrap()).expose_sql(),
            @"ALTER DATABASE [Customer360] REMOVE FILE [Customer360_log2];"
        );
    }
}
