//! The quiet-workload probe: client sessions and open transactions on the link's databases,
//! read before a failover (milink-facts §4: stop the workload on the primary first).

use crate::names::DatabaseName;

use super::{Batch, SqlIdentifier};

/// Client sessions and their open transactions on `databases`, in one round trip.
///
/// A session is listed for a database when that is its current database
/// (`sys.dm_exec_sessions.database_id`) or when it holds a transaction there
/// (`sys.dm_tran_session_transactions` joined to `sys.dm_tran_database_transactions` and
/// `sys.dm_tran_active_transactions`, which also catches three-part-name writes from another
/// database). System sessions (`is_user_process = 0`, which includes the availability group's
/// own workers) and the caller's own session (`@@SPID`) are left out. Needs `VIEW SERVER STATE`.
///
/// One row per session and database, ordered by `database_name`, `session_id`. Columns:
/// - `session_id` (smallint);
/// - `database_name` (sysname);
/// - `login_name` (nvarchar), `host_name` (nvarchar, NULL when the client sent none),
///   `program_name` (nvarchar, NULL likewise), `status` (nvarchar: `running`, `sleeping`, …);
/// - `open_transactions` (int): the session's transactions in that database, 0 when it is only
///   connected;
/// - `oldest_transaction_begin` (datetime, NULL without transactions).
///
/// No databases: no rows.
pub fn probe_workload_activity(databases: &[DatabaseName]) -> Batch {
    let filter = if databases.is_empty() {
        "1 = 0".to_owned()
    } else {
        let list: Vec<String> = databases.iter().map(SqlIdentifier::literal).collect();
        format!("d.name IN ({})", list.join(", "))
    };
    Batch::new(
        "read client sessions and open transactions on the link's databases",
        format!(
            "WITH link_databases AS (\n    \
             SELECT d.database_id, d.name\n    \
             FROM sys.databases AS d\n    \
             WHERE {filter}\n\
             ),\n\
             link_transactions AS (\n    \
             SELECT tst.session_id, tdt.database_id,\n        \
             COUNT(DISTINCT tst.transaction_id) AS transaction_count,\n        \
             MIN(tat.transaction_begin_time) AS oldest_begin\n    \
             FROM sys.dm_tran_session_transactions AS tst\n    \
             JOIN sys.dm_tran_database_transactions AS tdt ON tdt.transaction_id = tst.transaction_id\n    \
             JOIN sys.dm_tran_active_transactions AS tat ON tat.transaction_id = tst.transaction_id\n    \
             WHERE tdt.database_id IN (SELECT database_id FROM link_databases)\n    \
             GROUP BY tst.session_id, tdt.database_id\n\
             ),\n\
             activity AS (\n    \
             SELECT s.session_id, s.database_id\n    \
             FROM sys.dm_exec_sessions AS s\n    \
             WHERE s.database_id IN (SELECT database_id FROM link_databases)\n    \
             UNION\n    \
             SELECT t.session_id, t.database_id FROM link_transactions AS t\n\
             )\n\
             SELECT\n    \
             a.session_id AS session_id,\n    \
             ld.name AS database_name,\n    \
             s.login_name AS login_name,\n    \
             s.host_name AS host_name,\n    \
             s.program_name AS program_name,\n    \
             s.status AS status,\n    \
             COALESCE(t.transaction_count, 0) AS open_transactions,\n    \
             t.oldest_begin AS oldest_transaction_begin\n\
             FROM activity AS a\n\
             JOIN sys.dm_exec_sessions AS s ON s.session_id = a.session_id\n\
             JOIN link_databases AS ld ON ld.database_id = a.database_id\n\
             LEFT JOIN link_transactions AS t ON t.session_id = a.session_id AND t.database_id = a.database_id\n\
             WHERE s.is_user_process = 1 AND s.session_id <> @@SPID\n\
             ORDER BY ld.name, a.session_id;\n",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbs(names: &[&str]) -> Vec<DatabaseName> {
        names
            .iter()
            .map(|n| DatabaseName::new(*n).unwrap())
            .collect()
    }

    #[test]
    fn workload_activity() {
        let batch = probe_workload_activity(&dbs(&["ToyStore", "Customer360"]));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn hostile_names_are_quoted() {
        let sql = probe_workload_activity(&dbs(&["Toy'Store; DROP DATABASE x --"]))
            .display_sql()
            .to_owned();
        assert!(
            sql.contains("d.name IN (N'Toy''Store; DROP DATABASE x --')"),
            "{sql}"
        );
    }

    #[test]
    fn no_databases_is_a_valid_empty_query() {
        let sql = probe_workload_activity(&[]).display_sql().to_owned();
        assert!(sql.contains("WHERE 1 = 0\n"), "{sql}");
        assert!(!sql.contains("IN ()"));
    }

    #[test]
    fn one_read_only_statement_that_skips_itself_and_system_sessions() {
        let sql = probe_workload_activity(&dbs(&["ToyStore"]))
            .display_sql()
            .to_uppercase();
        assert!(sql.starts_with("WITH "), "{sql}");
        for verb in [
            "INSERT", "UPDATE ", "DELETE", "CREATE", "ALTER", "DROP", "EXEC ", "EXECUTE", "USE ",
        ] {
            assert!(!sql.contains(verb), "{verb} in a probe: {sql}");
        }
        assert_eq!(sql.matches(';').count(), 1, "one statement: {sql}");
        assert!(sql.contains("S.SESSION_ID <> @@SPID"));
        assert!(sql.contains("S.IS_USER_PROCESS = 1"));
    }
}
