//! Availability groups on SQL Server: the AG, the distributed AG (the link), replication mode,
//! failover, role changes and removal (milink-facts §2.1–§2.3, §4.1–§4.4).
//!
//! Creating and dropping are guarded, so a batch can be re-run after a crash. Role changes are
//! guarded by the local replica's role: a batch whose change has already happened does
//! nothing, and any other case runs the statement and lets SQL Server report what is wrong.

use serde::{Deserialize, Serialize};

use crate::names::{AgName, DatabaseName, LinkName, MiFqdn, ServerName, TcpPort};

use super::{Batch, SqlIdentifier, quote_ident, quote_nstring};

/// A replica's availability mode: T-SQL `AVAILABILITY_MODE`, and the link resource's REST
/// `replicationMode` (`Sync` / `Async`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AvailabilityMode {
    /// `SYNCHRONOUS_COMMIT` / `Sync`: needed on both sides before a planned failover.
    SynchronousCommit,
    /// `ASYNCHRONOUS_COMMIT` / `Async`: the link's default.
    AsynchronousCommit,
}

impl AvailabilityMode {
    /// The T-SQL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            AvailabilityMode::SynchronousCommit => "SYNCHRONOUS_COMMIT",
            AvailabilityMode::AsynchronousCommit => "ASYNCHRONOUS_COMMIT",
        }
    }
}

/// The availability group on SQL Server that the link's distributed AG joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAgSpec {
    /// The AG name, e.g. `AG_ToyStore`.
    pub ag: AgName,
    /// The databases (one in single-database link mode). Empty when the managed instance is
    /// the initial primary: seeding creates the database (see [`grant_create_any_database`]).
    pub databases: Vec<DatabaseName>,
    /// The replica: SQL Server's `@@SERVERNAME`.
    pub replica: ServerName,
    /// The endpoint URL, from [`crate::names::EndpointHost::tcp_url`] (read only as
    /// `TCP://host:port`).
    #[serde(deserialize_with = "tcp_url")]
    pub endpoint_url: String,
    /// Write `WITH (CLUSTER_TYPE = NONE)`; false on SQL Server 2016, which uses a WSFC and
    /// does not know the option ([`crate::names::Capabilities::cluster_type_none`]).
    pub cluster_type_none: bool,
}

/// Creates the availability group on SQL Server unless an AG of that name exists, with SQL
/// Server as the only replica (synchronous, manual failover, automatic seeding).
///
/// With no databases the AG is created empty, for a link whose initial primary is the
/// managed instance (SQL Server 2022 CU10+ / 2025); follow it with
/// [`grant_create_any_database`].
pub fn create_availability_group(spec: &CreateAgSpec) -> Batch {
    let mut sql = format!(
        "USE master;\n\
         IF NOT EXISTS (SELECT 1 FROM sys.availability_groups WHERE name = {literal} AND is_distributed = 0)\n    \
         CREATE AVAILABILITY GROUP {ident}\n",
        literal = spec.ag.literal(),
        ident = spec.ag.quoted(),
    );
    if spec.cluster_type_none {
        sql.push_str("    WITH (CLUSTER_TYPE = NONE)\n");
    }
    if spec.databases.is_empty() {
        sql.push_str("    FOR\n");
    } else {
        let list: Vec<String> = spec.databases.iter().map(SqlIdentifier::quoted).collect();
        sql.push_str("    FOR DATABASE ");
        sql.push_str(&list.join(", "));
        sql.push('\n');
    }
    sql.push_str(&format!(
        "    REPLICA ON {replica} WITH (\n        \
         ENDPOINT_URL = {url},\n        \
         AVAILABILITY_MODE = SYNCHRONOUS_COMMIT,\n        \
         FAILOVER_MODE = MANUAL,\n        \
         SEEDING_MODE = AUTOMATIC);\n",
        replica = spec.replica.literal(),
        url = quote_nstring(&spec.endpoint_url),
    ));
    Batch::new("create the availability group on SQL Server", sql)
}

/// Lets automatic seeding create the database on SQL Server (managed instance as initial
/// primary). Granting twice is harmless.
pub fn grant_create_any_database(ag: &AgName) -> Batch {
    Batch::new(
        "let seeding create the database on SQL Server",
        format!(
            "ALTER AVAILABILITY GROUP {} GRANT CREATE ANY DATABASE;\n",
            ag.quoted()
        ),
    )
}

/// The distributed availability group: the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDagSpec {
    /// The DAG name = the link name.
    pub dag: LinkName,
    /// The AG on SQL Server.
    pub sql_ag: AgName,
    /// SQL Server's listener URL, from [`crate::names::EndpointHost::tcp_url`] (for a
    /// multi-node AG: the listener address and the endpoint port; read only as
    /// `TCP://host:port`).
    #[serde(deserialize_with = "tcp_url")]
    pub sql_listener_url: String,
    /// The AG name on the managed instance (`instanceAvailabilityGroupName`).
    pub mi_ag: AgName,
    /// The managed instance's FQDN.
    pub mi_fqdn: MiFqdn,
    /// The database, when the managed instance is the initial primary.
    pub mi_database: Option<DatabaseName>,
    /// `SESSION_TIMEOUT` of SQL Server's side in seconds (the docs use 20; read only from 5,
    /// SQL Server's minimum).
    #[serde(deserialize_with = "session_timeout")]
    pub session_timeout_s: u16,
}

/// Reads an endpoint or listener URL, refusing anything but `TCP://host:port`.
fn tcp_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    crate::names::parse_tcp_url(&url).map_err(serde::de::Error::custom)?;
    Ok(url)
}

/// Reads a `SESSION_TIMEOUT`, refusing what SQL Server refuses (less than 5 seconds).
fn session_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let seconds = u16::deserialize(d)?;
    if seconds < 5 {
        return Err(serde::de::Error::custom(format!(
            "SESSION_TIMEOUT {seconds} is below SQL Server's minimum of 5 seconds; use 20, the \
             documented value"
        )));
    }
    Ok(seconds)
}

/// The managed instance's listener URL in the DAG:
/// `tcp://<fqdn>:5022;Server=[<mi-name>]`, plus `;Database=[<db>]` when the managed instance
/// is the initial primary.
///
/// The bracketed names are quoted like T-SQL identifiers: a `]` inside is doubled, so
/// `Toy]Store` is written `[Toy]]Store]`. The instance name is a DNS label and never contains
/// one. (How the service reads a `]` or `;` inside `Database=[…]` is UNVERIFIED; names without
/// them are unaffected.) The whole URL then enters T-SQL as an `N'…'` literal.
pub fn mi_listener_url(fqdn: &MiFqdn, database: Option<&DatabaseName>) -> String {
    let mut url = format!(
        "tcp://{}:{};Server={}",
        fqdn.as_str(),
        TcpPort::MIRRORING_DEFAULT,
        quote_ident(fqdn.instance_name()),
    );
    if let Some(db) = database {
        url.push_str(";Database=");
        url.push_str(&db.quoted());
    }
    url
}

/// Creates the distributed availability group (the link) on SQL Server unless a DAG of that
/// name exists. Both sides start asynchronous, manual failover, automatic seeding.
pub fn create_distributed_availability_group(spec: &CreateDagSpec) -> Batch {
    let mi_url = mi_listener_url(&spec.mi_fqdn, spec.mi_database.as_ref());
    Batch::new(
        "create the distributed availability group (the link) on SQL Server",
        format!(
            "USE master;\n\
             IF NOT EXISTS (SELECT 1 FROM sys.availability_groups WHERE name = {dag_literal} AND is_distributed = 1)\n    \
             CREATE AVAILABILITY GROUP {dag}\n    \
             WITH (DISTRIBUTED)\n    \
             AVAILABILITY GROUP ON\n        \
             {sql_ag} WITH (\n            \
             LISTENER_URL = {sql_url},\n            \
             AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT,\n            \
             FAILOVER_MODE = MANUAL,\n            \
             SEEDING_MODE = AUTOMATIC,\n            \
             SESSION_TIMEOUT = {timeout}),\n        \
             {mi_ag} WITH (\n            \
             LISTENER_URL = {mi_url},\n            \
             AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT,\n            \
             FAILOVER_MODE = MANUAL,\n            \
             SEEDING_MODE = AUTOMATIC);\n",
            dag_literal = spec.dag.literal(),
            dag = spec.dag.quoted(),
            sql_ag = spec.sql_ag.literal(),
            sql_url = quote_nstring(&spec.sql_listener_url),
            timeout = spec.session_timeout_s,
            mi_ag = spec.mi_ag.literal(),
            mi_url = quote_nstring(&mi_url),
        ),
    )
}

/// Sets the availability mode of both DAG replicas (run on SQL Server; the managed instance's
/// side is changed through ARM). Setting the current mode again changes nothing.
pub fn set_dag_availability_mode(
    dag: &LinkName,
    sql_ag: &AgName,
    mi_ag: &AgName,
    mode: AvailabilityMode,
) -> Batch {
    Batch::new(
        "set the link's availability mode on both replicas",
        format!(
            "ALTER AVAILABILITY GROUP {dag} MODIFY AVAILABILITY GROUP ON\n    \
             {sql_ag} WITH (AVAILABILITY_MODE = {mode}),\n    \
             {mi_ag} WITH (AVAILABILITY_MODE = {mode});\n",
            dag = dag.quoted(),
            sql_ag = sql_ag.literal(),
            mi_ag = mi_ag.literal(),
            mode = mode.keyword(),
        ),
    )
}

/// `IF NOT EXISTS (<the local replica of the DAG has role `role`>)`, the guard of a role change
/// whose result is that role.
fn unless_local_role(dag: &LinkName, role: &str) -> String {
    format!(
        "IF NOT EXISTS (\n    \
         SELECT 1 FROM sys.availability_groups AS ag\n    \
         JOIN sys.dm_hadr_availability_replica_states AS rs ON rs.group_id = ag.group_id\n    \
         WHERE ag.name = {literal} AND ag.is_distributed = 1\n      \
         AND rs.is_local = 1 AND rs.role_desc = {role})\n",
        literal = dag.literal(),
        role = quote_nstring(role),
    )
}

/// Planned failover of the link without data loss (SQL Server 2022 CU13+ / 2025), run on the
/// current primary. Skipped when the local replica is already the secondary (the failover
/// has happened).
pub fn failover_dag(dag: &LinkName) -> Batch {
    Batch::new(
        "planned failover of the link",
        format!(
            "{guard}    ALTER AVAILABILITY GROUP {dag} FAILOVER;\n",
            guard = unless_local_role(dag, "SECONDARY"),
            dag = dag.quoted(),
        ),
    )
}

/// Forced failover of the link, allowing data loss, run on the secondary. Skipped when the
/// local replica is already the primary.
pub fn force_failover_dag(dag: &LinkName) -> Batch {
    Batch::new(
        "forced failover of the link (data loss possible)",
        format!(
            "{guard}    ALTER AVAILABILITY GROUP {dag} FORCE_FAILOVER_ALLOW_DATA_LOSS;\n",
            guard = unless_local_role(dag, "PRIMARY"),
            dag = dag.quoted(),
        ),
    )
}

/// Demotes the local side of the link to secondary (split-brain repair, legacy DAG failover).
/// Skipped when the local replica is already the secondary.
pub fn set_dag_role_secondary(dag: &LinkName) -> Batch {
    Batch::new(
        "demote the local side of the link to secondary",
        format!(
            "{guard}    ALTER AVAILABILITY GROUP {dag} SET (ROLE = SECONDARY);\n",
            guard = unless_local_role(dag, "SECONDARY"),
            dag = dag.quoted(),
        ),
    )
}

/// Drops an (ordinary) availability group if it exists.
pub fn drop_availability_group(name: &AgName) -> Batch {
    Batch::new(
        "drop the availability group",
        format!(
            "IF EXISTS (SELECT 1 FROM sys.availability_groups WHERE name = {literal} AND is_distributed = 0)\n    \
             DROP AVAILABILITY GROUP {ident};\n",
            literal = name.literal(),
            ident = name.quoted(),
        ),
    )
}

/// Drops the distributed availability group (the link's metadata on SQL Server) if it exists.
pub fn drop_distributed_availability_group(name: &LinkName) -> Batch {
    Batch::new(
        "drop the distributed availability group",
        format!(
            "IF EXISTS (SELECT 1 FROM sys.availability_groups WHERE name = {literal} AND is_distributed = 1)\n    \
             DROP AVAILABILITY GROUP {ident};\n",
            literal = name.literal(),
            ident = name.quoted(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::EndpointHost;

    fn ag(s: &str) -> AgName {
        AgName::new(s).unwrap()
    }
    fn link(s: &str) -> LinkName {
        LinkName::new(s).unwrap()
    }
    fn db(s: &str) -> DatabaseName {
        DatabaseName::new(s).unwrap()
    }
    fn fqdn() -> MiFqdn {
        MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap()
    }
    fn sql_url() -> String {
        EndpointHost::new("10.0.0.4")
            .unwrap()
            .tcp_url(TcpPort::MIRRORING_DEFAULT)
    }

    fn ag_spec(databases: Vec<DatabaseName>, cluster_type_none: bool) -> CreateAgSpec {
        CreateAgSpec {
            ag: ag("AG_ToyStore"),
            databases,
            replica: ServerName::new("TailspinSql").unwrap(),
            endpoint_url: sql_url(),
            cluster_type_none,
        }
    }

    fn dag_spec(mi_database: Option<DatabaseName>) -> CreateDagSpec {
        CreateDagSpec {
            dag: link("DAG_ToyStore"),
            sql_ag: ag("AG_ToyStore"),
            sql_listener_url: sql_url(),
            mi_ag: ag("MI_ToyStore"),
            mi_fqdn: fqdn(),
            mi_database,
            session_timeout_s: 20,
        }
    }

    #[test]
    fn create_ag_sql_server_initial_primary() {
        let batch = create_availability_group(&ag_spec(vec![db("ToyStore")], true));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_ag_sql_server_2016_has_no_cluster_type() {
        let batch = create_availability_group(&ag_spec(vec![db("ToyStore")], false));
        assert!(!batch.display_sql().contains("CLUSTER_TYPE"));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_ag_multi_database() {
        let batch =
            create_availability_group(&ag_spec(vec![db("ToyStore"), db("Customer360")], true));
        assert!(
            batch
                .display_sql()
                .contains("FOR DATABASE [ToyStore], [Customer360]\n")
        );
    }

    #[test]
    fn create_ag_mi_initial_primary() {
        let batch = create_availability_group(&ag_spec(vec![], true));
        assert!(!batch.display_sql().contains("DATABASE"));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_ag_hostile() {
        let mut spec = ag_spec(vec![db("Toy]Store' --")], true);
        spec.ag = ag("AG]'/*");
        spec.replica = ServerName::new("HOST\\INST'").unwrap();
        insta::assert_snapshot!(create_availability_group(&spec).display_sql());
    }

    #[test]
    fn grant_create_database() {
        insta::assert_snapshot!(grant_create_any_database(&ag("AG_ToyStore")).display_sql());
    }

    #[test]
    fn create_dag_sql_server_initial_primary() {
        let batch = create_distributed_availability_group(&dag_spec(None));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_dag_mi_initial_primary() {
        let batch = create_distributed_availability_group(&dag_spec(Some(db("ToyStore"))));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn create_dag_hostile() {
        let mut spec = dag_spec(Some(db("Toy]Store' --")));
        spec.dag = link("DAG]'; DROP DATABASE x; --");
        spec.mi_ag = ag("MI'/*");
        insta::assert_snapshot!(create_distributed_availability_group(&spec).display_sql());
    }

    /// Reads `[name]` with `]]` back, the way the bracketed names in a listener URL are written.
    fn read_bracketed(s: &str) -> Option<(String, &str)> {
        let rest = s.strip_prefix('[')?;
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == ']' {
                if chars.peek().map(|&(_, n)| n) == Some(']') {
                    chars.next();
                    out.push(']');
                } else {
                    return Some((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    #[test]
    fn mi_listener_url_brackets_double_the_closing_bracket() {
        assert_eq!(
            mi_listener_url(&fqdn(), None),
            "tcp://tailspin-mi.abc123.database.windows.net:5022;Server=[tailspin-mi]"
        );
        assert_eq!(
            mi_listener_url(&fqdn(), Some(&db("ToyStore"))),
            "tcp://tailspin-mi.abc123.database.windows.net:5022;Server=[tailspin-mi];Database=[ToyStore]"
        );
        for name in ["Toy]Store", "]]", "a];Server=[evil", "x'y"] {
            let url = mi_listener_url(&fqdn(), Some(&db(name)));
            let tail = url.split_once(";Database=").unwrap().1;
            let (read, rest) = read_bracketed(tail).unwrap();
            assert_eq!(read, name);
            assert_eq!(rest, "", "nothing may follow the database name in {url}");
        }
    }

    #[test]
    fn availability_mode_sync() {
        let batch = set_dag_availability_mode(
            &link("DAG_ToyStore"),
            &ag("AG_ToyStore"),
            &ag("MI_ToyStore"),
            AvailabilityMode::SynchronousCommit,
        );
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn availability_mode_async() {
        let batch = set_dag_availability_mode(
            &link("DAG_ToyStore"),
            &ag("AG_ToyStore"),
            &ag("MI_ToyStore"),
            AvailabilityMode::AsynchronousCommit,
        );
        assert_eq!(
            batch.display_sql().matches("ASYNCHRONOUS_COMMIT").count(),
            2
        );
        assert!(!batch.display_sql().contains(" SYNCHRONOUS_COMMIT"));
    }

    #[test]
    fn failover() {
        insta::assert_snapshot!(failover_dag(&link("DAG_ToyStore")).display_sql());
    }

    #[test]
    fn force_failover() {
        insta::assert_snapshot!(force_failover_dag(&link("DAG_ToyStore")).display_sql());
    }

    #[test]
    fn role_secondary() {
        insta::assert_snapshot!(set_dag_role_secondary(&link("DAG_ToyStore")).display_sql());
    }

    #[test]
    fn role_changes_skip_only_when_already_done() {
        // A planned failover and a demotion leave the local side SECONDARY; a forced failover
        // leaves it PRIMARY. Each batch skips exactly when its own result is already there.
        let dag = link("DAG_ToyStore");
        for (batch, done) in [
            (failover_dag(&dag), "SECONDARY"),
            (set_dag_role_secondary(&dag), "SECONDARY"),
            (force_failover_dag(&dag), "PRIMARY"),
        ] {
            let sql = batch.display_sql();
            assert!(sql.starts_with("IF NOT EXISTS ("), "{sql}");
            assert!(sql.contains(&format!("rs.role_desc = N'{done}')")), "{sql}");
            assert!(sql.contains("rs.is_local = 1"), "{sql}");
        }
    }

    #[test]
    fn drop_ag() {
        insta::assert_snapshot!(drop_availability_group(&ag("AG_ToyStore")).display_sql());
    }

    #[test]
    fn drop_dag() {
        insta::assert_snapshot!(
            drop_distributed_availability_group(&link("DAG_ToyStore")).display_sql()
        );
    }

    #[test]
    fn drop_hostile() {
        insta::assert_snapshot!(drop_availability_group(&ag("Toy]Store' --")).display_sql());
    }

    #[test]
    fn drops_only_touch_their_own_kind() {
        // Dropping the AG must not drop a DAG of the same name, and the other way round.
        assert!(
            drop_availability_group(&ag("X"))
                .display_sql()
                .contains("is_distributed = 0")
        );
        assert!(
            drop_distributed_availability_group(&link("X"))
                .display_sql()
                .contains("is_distributed = 1")
        );
    }
}
