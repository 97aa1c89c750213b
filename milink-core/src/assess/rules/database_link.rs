//! Database checks specific to the link.

use crate::assess::facts::{DatabaseFacts, DatabaseState, RecoveryModel};
use crate::assess::sku::TierLimits;
use crate::names::{LinkMode, LogicalFileName};
use crate::tsql::Batch;
use crate::tsql::remediation::{self, BackupPath, LinkTraceFlag, Termination};

use super::{
    Check, Context, Evidence, F13, F18, F51_18, Fix, NO_CATALOG, NO_TARGET, Outcome, Rule,
    ScopeKind, Severity, list,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    DATABASE_STATE,
    RECOVERY_MODEL,
    FULL_BACKUP,
    BACKUP_CHECKSUM,
    MULTIPLE_LOG_FILES,
    FILE_STREAM,
    IN_MEMORY_OLTP_TIER,
    IN_MEMORY_OLTP_FILES,
    TDE_CERTIFICATE,
    TDE_CERTIFICATE_UNVERIFIED,
    NAME_TAKEN,
    EXISTING_LINK,
    OTHER_DISTRIBUTED_AG,
    AG_MEMBERSHIP,
    SEEDING_LOG_BACKUP_RISK,
    ADR_VERSION_STORE,
    ADR_DISABLED,
    SERVICE_BROKER,
    CDC,
    REPLICATION,
];

const DATABASE_STATE: Rule = rule!(
    "Link.DatabaseState",
    Blocker,
    Database,
    "The database is online",
    F13,
    "sys.databases.state_desc",
    Database(database_state)
);
fn database_state(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.state == DatabaseState::Online {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("the database is {:?}, not ONLINE", d.state))
            .with("state", format!("{:?}", d.state)),
        Fix::action("Bring the database ONLINE before linking it."),
    )
}

const RECOVERY_MODEL: Rule = rule!(
    "Link.RecoveryModel",
    Blocker,
    Database,
    "Full recovery model",
    F13,
    "sys.databases.recovery_model_desc",
    Database(recovery_model)
);
fn recovery_model(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.recovery_model == RecoveryModel::Full {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the recovery model is {}; the link needs FULL",
            d.recovery_model
        ))
        .with("recovery model", d.recovery_model),
        Fix::sql(&[remediation::set_recovery_full(&d.name)])
            .with_note("Take a full backup afterwards (Link.FullBackup) to start the log chain."),
    )
}

const FULL_BACKUP: Rule = rule!(
    "Link.FullBackup",
    Blocker,
    Database,
    "A full backup started the log chain",
    F13,
    "msdb.dbo.backupset (type D, not COPY_ONLY) and sys.database_recovery_status.last_log_backup_lsn",
    Database(full_backup)
);
fn full_backup(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.last_full_backup.is_some() && d.log_chain_established {
        return Outcome::Pass;
    }
    let summary = match d.last_full_backup {
        None => "no full backup without COPY_ONLY exists".to_owned(),
        Some(_) => {
            "the log chain is not established (no full backup since the switch to FULL recovery)"
                .to_owned()
        }
    };
    let mut ev = Evidence::new(summary).with("log chain established", d.log_chain_established);
    if let Some(t) = d.last_full_backup {
        ev = ev.with("last full backup", t);
    }
    let note = if d.recovery_model == RecoveryModel::Full {
        "The file goes to the instance's default backup directory; change the path as needed. \
         Never COPY_ONLY: a copy-only backup does not start the log chain (error 1475)."
    } else {
        "Run it after ALTER DATABASE … SET RECOVERY FULL (Link.RecoveryModel). The file goes to \
         the instance's default backup directory; change the path as needed. Never COPY_ONLY: \
         a copy-only backup does not start the log chain (error 1475)."
    };
    Outcome::Fail(
        ev,
        Fix::sql(&[remediation::backup_database_full(
            &d.name,
            &BackupPath::default_for(&d.name),
        )])
        .with_note(note),
    )
}

const BACKUP_CHECKSUM: Rule = rule!(
    "Link.BackupChecksum",
    Warning,
    Database,
    "The full backup was taken WITH CHECKSUM",
    F13,
    "msdb.dbo.backupset.has_backup_checksums of the last full backup without COPY_ONLY",
    Database(backup_checksum)
);
/// The preparation guide takes the database's full backup `WITH CHECKSUM` (milink-facts §1.3:
/// `BACKUP DATABASE … WITH CHECKSUM`), so pages are verified before the database is seeded;
/// a full backup without page checksums is reported. No full backup is Link.FullBackup's.
fn backup_checksum(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(last) = d.last_full_backup else {
        return Outcome::Pass;
    };
    match d.last_full_backup_checksum {
        None => {
            Outcome::NotEvaluated("whether the last full backup has checksums was not read".into())
        }
        Some(true) => Outcome::Pass,
        Some(false) => Outcome::Fail(
            Evidence::new("the last full backup was taken without CHECKSUM")
                .with("last full backup", last),
            Fix::sql(&[remediation::backup_database_full(
                &d.name,
                &BackupPath::default_for(&d.name),
            )])
            .with_note(
                "milink's full backup is taken WITH CHECKSUM; change the path as needed, and \
                 add CHECKSUM to the backup jobs (never COPY_ONLY for this one).",
            ),
        ),
    }
}

const MULTIPLE_LOG_FILES: Rule = rule!(
    "MultipleLogFiles",
    Blocker,
    Database,
    "One log file",
    F51_18,
    "sys.master_files",
    Database(multiple_log_files)
);
fn multiple_log_files(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.log_files.len() <= 1 {
        return Outcome::Pass;
    }
    let ev = Evidence::new(format!(
        "{} log files; the link replicates databases with one",
        d.log_files.len()
    ))
    .with("log files", list(&d.log_files));
    let removals: Vec<Batch> = d
        .log_files
        .iter()
        .skip(1)
        .filter_map(|f| LogicalFileName::new(f.as_str()).ok())
        .map(|f| remediation::remove_file(&d.name, &f))
        .collect();
    let fix = if removals.is_empty() {
        Fix::action("Remove the extra log files once they hold no active log.")
    } else {
        Fix::sql(&removals).with_note(
            "Back up the log until the extra files hold no active log (sys.dm_db_log_info), \
             then remove them.",
        )
    };
    Outcome::Fail(ev, fix)
}

const FILE_STREAM: Rule = rule!(
    "FileStream",
    Blocker,
    Database,
    "No FILESTREAM or FileTable",
    F51_18,
    "sys.filegroups (FD) and sys.tables.is_filetable",
    Database(file_stream)
);
fn file_stream(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    if c.filestream_filegroups.is_empty() && c.filetables == 0 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("the database uses FILESTREAM or FileTable, which the managed instance does not support")
            .with("FILESTREAM filegroups", list(&c.filestream_filegroups))
            .with("FileTables", c.filetables),
        Fix::action(
            "Move the FILESTREAM data and FileTables out of the database (e.g. to Azure Blob \
             Storage), drop them and remove the FILESTREAM filegroup(s); otherwise this database \
             can't be linked.",
        ),
    )
}

const IN_MEMORY_OLTP_TIER: Rule = rule!(
    "Link.InMemoryOltpTier",
    Blocker,
    Database,
    "In-Memory OLTP needs Business Critical",
    F18,
    "sys.filegroups (FX) and the target tier",
    Database(in_memory_oltp_tier)
);
fn in_memory_oltp_tier(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    let Some(fg) = &c.memory_optimized_filegroup else {
        return Outcome::Pass;
    };
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    if TierLimits::of(t.tier).in_memory_oltp {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "In-Memory OLTP (filegroup {fg}) needs Business Critical; the target is {}",
            t.tier
        ))
        .with("filegroup", fg)
        .with("memory-optimized tables", c.memory_optimized_tables)
        .with("target tier", t.tier),
        Fix::action(
            "Link this database to a Business Critical managed instance, sized for the memory-optimized data.",
        ),
    )
}

const IN_MEMORY_OLTP_FILES: Rule = rule!(
    "Link.InMemoryOltpFiles",
    Blocker,
    Database,
    "At most one In-Memory OLTP file",
    F18,
    "files of the memory-optimized filegroup",
    Database(in_memory_oltp_files)
);
fn in_memory_oltp_files(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    if c.memory_optimized_files <= 1 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} In-Memory OLTP files; the link replicates databases with at most one",
            c.memory_optimized_files
        ))
        .with("files", c.memory_optimized_files),
        Fix::action(
            "Consolidate the memory-optimized filegroup into one container (rebuild the database's memory-optimized filegroup), or migrate with another method.",
        ),
    )
}

const TDE_CERTIFICATE: Rule = rule!(
    "Link.TdeCertificate",
    Blocker,
    Database,
    "TDE certificate is on the managed instance",
    F13,
    "sys.dm_database_encryption_keys thumbprint against the target's TDE certificates",
    Database(tde_certificate)
);
fn tde_certificate(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(tde) = &d.tde else {
        return Outcome::Pass;
    };
    let Some(known) = ctx
        .target
        .and_then(|t| t.tde_certificate_thumbprints.as_ref())
    else {
        return Outcome::Pass;
    };
    let present = tde
        .thumbprint
        .as_ref()
        .is_some_and(|tp| known.iter().any(|k| k.eq_ignore_ascii_case(tp)));
    if present {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new("the TDE certificate is not on the managed instance")
        .with("encryptor", &tde.encryptor_type);
    if let Some(c) = &tde.certificate {
        ev = ev.with("certificate", c);
    }
    if let Some(tp) = &tde.thumbprint {
        ev = ev.with("thumbprint", tp);
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Export the TDE certificate with its private key and upload it to the managed \
             instance (PowerShell Add-AzSqlManagedInstanceTransparentDataEncryptionCertificate \
             or the tdeCertificates REST operation), or protect the database with an Azure Key \
             Vault key the managed instance can use.",
        ),
    )
}

const TDE_CERTIFICATE_UNVERIFIED: Rule = rule!(
    "Link.TdeCertificateUnverified",
    Warning,
    Database,
    "TDE certificate presence is unknown",
    F13,
    "TDE on, target TDE certificates unknown",
    Database(tde_certificate_unverified)
);
fn tde_certificate_unverified(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(tde) = &d.tde else {
        return Outcome::Pass;
    };
    if ctx
        .target
        .is_some_and(|t| t.tde_certificate_thumbprints.is_some())
    {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "the database uses TDE; whether its certificate is on the managed instance is unknown",
        )
        .with("encryptor", &tde.encryptor_type)
        .with(
            "certificate",
            tde.certificate.as_deref().unwrap_or("unknown"),
        ),
        Fix::action(
            "Make sure the TDE certificate (with its private key) is uploaded to the managed \
             instance before creating the link.",
        ),
    )
}

const NAME_TAKEN: Rule = rule!(
    "Link.NameTaken",
    Blocker,
    Database,
    "The name is free on the managed instance",
    F13,
    "the target's database names",
    Database(name_taken)
);
fn name_taken(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    match t.has_database(&d.name) {
        None => Outcome::NotEvaluated("the managed instance's databases are unknown".into()),
        Some(false) => Outcome::Pass,
        Some(true) => Outcome::Fail(
            Evidence::new(format!(
                "{} already has a database named {}",
                t.name, d.name
            )),
            Fix::action(
                "Drop or rename the database on the managed instance, or link to another instance.",
            ),
        ),
    }
}

const EXISTING_LINK: Rule = rule!(
    "Link.ExistingLink",
    Blocker,
    Database,
    "The database is not already linked to this managed instance",
    F18,
    "the databases of the instance's existing links (distributedAvailabilityGroups, databases[].databaseName)",
    Database(existing_link)
);
/// A database already replicated to this managed instance by a link can't get a second link
/// to it: the link's copy holds the name (milink-facts §1.8: one database per link, one DAG
/// per link; a link from the managed instance isn't supported for a database already linked).
/// A link of the same database to another instance is allowed (Link.OtherDistributedAg).
fn existing_link(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(links) = &t.links else {
        return Outcome::NotEvaluated("the managed instance's links were not read".into());
    };
    let holding: Vec<&str> = links
        .iter()
        .filter(|l| {
            l.databases
                .iter()
                .any(|n| n.eq_ignore_ascii_case(d.name.as_str()))
        })
        .map(|l| l.name.as_str())
        .collect();
    if holding.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} already replicates {} in link {}",
            t.name,
            d.name,
            list(&holding)
        ))
        .with("links", list(&holding)),
        Fix::action(
            "Use the existing link, or remove it (and the database copy on the managed \
             instance) before creating a new one.",
        ),
    )
}

const OTHER_DISTRIBUTED_AG: Rule = rule!(
    "Link.OtherDistributedAg",
    Info,
    Database,
    "The database's availability group is already in a distributed availability group",
    F18,
    "sys.availability_groups (is_distributed) whose replica is the database's AG",
    Database(other_distributed_ag)
);
/// The database's availability group is already a replica of a distributed availability group
/// (another link, or a DAG of its own). A further link to another managed instance is one
/// more DAG on the same AG, which the overview allows; this names the existing one so it is
/// not mistaken for the new link.
fn other_distributed_ag(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(dag) = &d.distributed_ag else {
        return Outcome::Pass;
    };
    let ag = d.ag.as_ref().map_or("?", |a| a.ag_name.as_str());
    Outcome::Fail(
        Evidence::new(format!(
            "availability group {ag} is already in distributed availability group {dag}"
        ))
        .with("availability group", ag)
        .with("distributed availability group", dag),
        Fix::action(
            "Nothing to fix for a link to another instance: give the new link a distinct \
             name. A link to the instance that DAG already reaches is refused \
             (Link.ExistingLink).",
        ),
    )
}

const AG_MEMBERSHIP: Rule = rule!(
    "Link.AgMembership",
    Blocker,
    Database,
    "One database per availability group (SingleDatabase mode)",
    F18,
    "sys.availability_databases_cluster",
    Database(ag_membership)
);
fn ag_membership(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(ag) = &d.ag else {
        return Outcome::Pass;
    };
    if ctx.options.link_mode == LinkMode::MultiDatabase || ag.database_count <= 1 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "availability group {} holds {} databases; a SingleDatabase link needs an AG with one",
            ag.ag_name, ag.database_count
        ))
        .with("availability group", &ag.ag_name)
        .with("databases", ag.database_count),
        Fix::action(
            "Remove the other databases from the availability group, link this database through \
             an AG of its own, or use MultiDatabase link mode.",
        ),
    )
}

const SEEDING_LOG_BACKUP_RISK: Rule = rule!(
    "Link.SeedingLogBackupRisk",
    Warning,
    Database,
    "Log backups can break seeding",
    "milink-facts §3.3",
    "recent log backups in msdb and trace flag 12381",
    Database(seeding_log_backup_risk)
);
fn seeding_log_backup_risk(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if ctx.instance.trace_flag_on(12381) {
        return Outcome::Pass;
    }
    let Some(last) = d.last_log_backup else {
        return Outcome::Pass;
    };
    let window =
        std::time::Duration::from_secs(u64::from(ctx.options.log_backup_window_hours) * 3600);
    if ctx.options.now.since(last) > window {
        return Outcome::Pass;
    }
    let fix = remediation::trace_on_global(&[LinkTraceFlag::SeedingLogTruncation])
        .map(|b| Fix::sql(&[b]))
        .unwrap_or(Fix::None)
        .with_note(
            "A log backup during seeding truncates the log and fails the link (errors 1408/1412). \
             On builds that support trace flag 12381, turn it on for the seeding window and off \
             afterwards (DBCC TRACEOFF (12381, -1)), watching log growth; which build introduced \
             it is not documented. Otherwise pause the log backup jobs until seeding completes.",
        );
    Outcome::Fail(
        Evidence::new("log backups are running; one taken during seeding breaks the link")
            .with("last log backup", last),
        fix,
    )
}

const ADR_VERSION_STORE: Rule = rule!(
    "Link.AdrVersionStore",
    Blocker,
    Database,
    "ADR version store on PRIMARY",
    F18,
    "sys.dm_tran_persistent_version_store_stats",
    Database(adr_version_store)
);
fn adr_version_store(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.adr_enabled != Some(true) {
        return Outcome::Pass;
    }
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    match &c.pvs_filegroup {
        Some(fg) if !fg.eq_ignore_ascii_case("PRIMARY") => Outcome::Fail(
            Evidence::new(format!(
                "the ADR version store is on filegroup {fg}; restores on the managed instance need it on PRIMARY"
            ))
            .with("version store filegroup", fg),
            Fix::sql(&[remediation::enable_accelerated_database_recovery(&d.name)]).with_note(
                "First turn ADR off (ALTER DATABASE … SET ACCELERATED_DATABASE_RECOVERY = OFF) \
                 and let the version store drain (sys.sp_persistent_version_cleanup), then run this.",
            ),
        ),
        _ => Outcome::Pass,
    }
}

const ADR_DISABLED: Rule = rule!(
    "Link.AdrDisabled",
    Info,
    Database,
    "Accelerated database recovery",
    F18,
    "sys.databases.is_accelerated_database_recovery_on (2019+)",
    Database(adr_disabled)
);
fn adr_disabled(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.adr_enabled != Some(false) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "accelerated database recovery is off; it can't be turned on after migration",
        ),
        Fix::sql(&[remediation::enable_accelerated_database_recovery(&d.name)])
            .with_note("Only if you want ADR on the managed instance."),
    )
}

const SERVICE_BROKER: Rule = rule!(
    "Link.ServiceBroker",
    Info,
    Database,
    "Service Broker",
    F13,
    "sys.databases.is_broker_enabled",
    Database(service_broker)
);
fn service_broker(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.broker_enabled {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "Service Broker is disabled; it can't be used on the managed instance unless enabled before migrating",
        ),
        Fix::sql(&[remediation::enable_broker(&d.name, Termination::NoWait)]).with_note(
            "Only if you need Service Broker on the managed instance; it needs exclusive access.",
        ),
    )
}

const CDC: Rule = rule!(
    "Link.Cdc",
    Info,
    Database,
    "Change data capture",
    F18,
    "sys.databases.is_cdc_enabled",
    Database(cdc)
);
fn cdc(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if !d.cdc_enabled {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("change data capture is enabled"),
        Fix::action(
            "Reconfigure CDC (capture and cleanup jobs) on the managed instance after migration.",
        ),
    )
}

const REPLICATION: Rule = rule!(
    "Link.Replication",
    Warning,
    Database,
    "Replication",
    F18,
    "sys.databases replication flags",
    Database(replication)
);
fn replication(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let r = d.replication;
    let roles: Vec<&str> = [
        (r.published, "publisher"),
        (r.merge_published, "merge publisher"),
        (r.subscribed, "subscriber"),
        (r.distributor, "distributor"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n)
    .collect();
    if roles.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the database takes part in replication as {}",
            list(&roles)
        )),
        Fix::action(
            "The linked copy on the managed instance can't be a publisher while it is a \
             secondary; reconfigure replication after migration.",
        ),
    )
}
