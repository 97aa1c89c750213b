//! Tests of the evaluator on small hand-made tables (CTEs over `VALUES`), each of which fails if
//! the construct it names were evaluated wrong; and milink's own statements over the catalog.

use crate::lifecycle::Side;
use crate::names::{CertificateName, DatabaseName, LinkName};
use crate::sim::World;
use crate::sim::lab::Lab;
use crate::sim::tds::{ResultSet, SessionInfo, SqlError, SqlType, Value};
use crate::tsql;

use super::{exists, run_select};

fn session() -> SessionInfo {
    SessionInfo {
        spid: 52,
        user: "milink".into(),
        database: "master".into(),
        strict: false,
    }
}

fn with_world<R>(f: impl FnOnce(&World) -> R) -> R {
    Lab::tailspin(3).unwrap().sim.with_world(f)
}

/// The tables of the tests: `a (id, name, grp)` and `b (a_id, tag)`.
const TABLES: &str = "WITH a AS (SELECT * FROM (VALUES (1, N'one', N'x'), (2, N'two', N'x'), \
     (3, NULL, N'y'), (4, N'four', NULL)) AS v (id, name, grp)), \
     b AS (SELECT * FROM (VALUES (1, N'red'), (1, N'blue'), (3, N'green')) AS w (a_id, tag)) ";

fn query(sql: &str) -> Result<ResultSet, SqlError> {
    with_world(|w| {
        let mut sets = run_select(w, Side::SqlServer, &session(), &format!("{TABLES}{sql}"))?;
        assert_eq!(sets.len(), 1);
        Ok(sets.remove(0))
    })
}

fn rows(sql: &str) -> Vec<Vec<Value>> {
    query(sql).unwrap_or_else(|e| panic!("{e:?}")).rows
}

fn i(v: i32) -> Value {
    Value::Int(v)
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn ints(sql: &str) -> Vec<i32> {
    rows(sql)
        .into_iter()
        .map(|r| match r[0] {
            Value::Int(n) => n,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn where_filters_with_three_valued_logic() {
    assert_eq!(
        ints("SELECT id FROM a WHERE name = N'TWO' ORDER BY id"),
        [2]
    );
    // NULL = anything is UNKNOWN, and so is NOT (UNKNOWN): row 3 is in neither.
    assert_eq!(
        ints("SELECT id FROM a WHERE name <> N'one' ORDER BY id"),
        [2, 4]
    );
    assert_eq!(
        ints("SELECT id FROM a WHERE NOT (name = N'one') ORDER BY id"),
        [2, 4]
    );
    assert_eq!(ints("SELECT id FROM a WHERE name IS NULL"), [3]);
    assert_eq!(
        ints("SELECT id FROM a WHERE grp IS NOT NULL AND id > 1 ORDER BY id"),
        [2, 3]
    );
    assert_eq!(
        ints("SELECT id FROM a WHERE id = 1 OR grp = N'y' ORDER BY id"),
        [1, 3]
    );
    // x NOT IN (…, NULL) is never TRUE.
    assert_eq!(
        ints("SELECT id FROM a WHERE id NOT IN (1, NULL)"),
        Vec::<i32>::new()
    );
    assert_eq!(
        ints("SELECT id FROM a WHERE id IN (4, 2) ORDER BY id"),
        [2, 4]
    );
    assert_eq!(ints("SELECT id FROM a WHERE 1 = 0"), Vec::<i32>::new());
    assert_eq!(
        ints("SELECT id FROM a WHERE id IN (SELECT a_id FROM b) ORDER BY id"),
        [1, 3]
    );
}

#[test]
fn joins_match_and_left_joins_extend_with_nulls() {
    assert_eq!(
        rows("SELECT a.id, b.tag FROM a JOIN b ON b.a_id = a.id ORDER BY a.id, b.tag"),
        [
            vec![i(1), s("blue")],
            vec![i(1), s("red")],
            vec![i(3), s("green")]
        ]
    );
    assert_eq!(
        rows(
            "SELECT a.id, b.tag FROM a LEFT JOIN b ON b.a_id = a.id AND b.tag <> N'red' \
             ORDER BY a.id"
        ),
        [
            vec![i(1), s("blue")],
            vec![i(2), Value::Null],
            vec![i(3), s("green")],
            vec![i(4), Value::Null]
        ]
    );
}

#[test]
fn outer_apply_is_correlated_and_takes_the_top_row_in_order() {
    assert_eq!(
        rows(
            "SELECT a.id, t.tag FROM a OUTER APPLY (SELECT TOP (1) b.tag FROM b \
             WHERE b.a_id = a.id ORDER BY b.tag DESC) AS t ORDER BY a.id DESC"
        ),
        [
            vec![i(4), Value::Null],
            vec![i(3), s("green")],
            vec![i(2), Value::Null],
            vec![i(1), s("red")]
        ]
    );
    // CROSS APPLY drops the rows without a match.
    assert_eq!(
        ints("SELECT a.id FROM a CROSS APPLY (SELECT b.tag FROM b WHERE b.a_id = a.id) AS t"),
        [1, 1, 3]
    );
}

#[test]
fn group_by_counts_and_aggregates_per_group() {
    assert_eq!(
        rows(
            "SELECT grp, COUNT(*) AS n, COUNT(name) AS named, MIN(id) AS lo, MAX(id) AS hi \
             FROM a GROUP BY grp ORDER BY grp"
        ),
        [
            vec![Value::Null, i(1), i(1), i(4), i(4)],
            vec![s("x"), i(2), i(2), i(1), i(2)],
            vec![s("y"), i(1), i(0), i(3), i(3)]
        ]
    );
    assert_eq!(
        rows("SELECT COUNT(DISTINCT a_id) AS d, COUNT(*) AS n FROM b"),
        [vec![i(2), i(3)]]
    );
    // An aggregate without GROUP BY over no rows is one row.
    assert_eq!(rows("SELECT COUNT(*) FROM b WHERE 1 = 0"), [vec![i(0)]]);
}

#[test]
fn union_removes_duplicates_and_union_all_keeps_them() {
    assert_eq!(
        ints("SELECT a_id FROM b UNION SELECT id FROM a WHERE id < 3 ORDER BY a_id"),
        [1, 2, 3]
    );
    assert_eq!(
        ints("SELECT a_id FROM b UNION ALL SELECT id FROM a WHERE id < 3 ORDER BY a_id"),
        [1, 1, 1, 2, 3]
    );
}

#[test]
fn order_by_direction_nulls_and_top() {
    // NULLs first ascending, last descending.
    assert_eq!(ints("SELECT id FROM a ORDER BY name"), [3, 4, 1, 2]);
    assert_eq!(ints("SELECT id FROM a ORDER BY name DESC"), [2, 1, 4, 3]);
    assert_eq!(
        ints("SELECT id FROM a ORDER BY grp DESC, id DESC"),
        [3, 2, 1, 4]
    );
    assert_eq!(ints("SELECT TOP (2) id FROM a ORDER BY id DESC"), [4, 3]);
    // ORDER BY a column that is not selected, and an output alias.
    assert_eq!(
        rows("SELECT name AS n FROM a WHERE id < 3 ORDER BY a.id DESC"),
        [vec![s("two")], vec![s("one")]]
    );
}

#[test]
fn expressions_case_coalesce_convert_and_subqueries() {
    assert_eq!(
        rows(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id) THEN 1 ELSE 0 END, \
             COALESCE(name, N'none'), CONVERT(varchar(25), id * 10 / 4), \
             (SELECT COUNT(*) FROM b WHERE b.a_id = a.id) FROM a ORDER BY id"
        ),
        [
            vec![i(1), s("one"), s("2"), i(2)],
            vec![i(0), s("two"), s("5"), i(0)],
            vec![i(1), s("none"), s("7"), i(1)],
            vec![i(0), s("four"), s("10"), i(0)]
        ]
    );
    let set = query("SELECT CAST(id AS bigint) AS big, CAST(NULL AS sysname) AS nothing, 0x0aff AS bin FROM a WHERE id = 1").unwrap();
    assert_eq!(set.columns[0].ty, SqlType::BigInt);
    assert_eq!(set.columns[1].ty, SqlType::NVarChar(Some(128)));
    assert_eq!(
        set.rows,
        [vec![
            Value::BigInt(1),
            Value::Null,
            Value::Binary(vec![0x0a, 0xff])
        ]]
    );
    with_world(|w| {
        let set = &run_select(
            w,
            Side::SqlServer,
            &session(),
            "SELECT @@SPID AS spid, 1 AS one",
        )
        .unwrap()[0];
        assert_eq!(set.rows, [vec![Value::SmallInt(52), i(1)]]);
    });
}

#[test]
fn errors_are_sql_servers() {
    let err =
        |sql: &str| with_world(|w| run_select(w, Side::SqlServer, &session(), sql).unwrap_err());
    let e = err("SELEC 1");
    assert_eq!((e.number, e.class), (102, 15));
    assert!(e.message.contains("SELEC"), "{}", e.message);
    assert_eq!(err("SELECT 1 FROM").number, 102);
    assert_eq!(err("SELECT name FROM sys.no_such_view").number, 208);
    assert_eq!(err("SELECT nope FROM sys.databases").number, 207);
    assert_eq!(err("SELECT x.name FROM sys.databases AS d").number, 4104);
    assert_eq!(
        err("SELECT name FROM sys.databases AS a JOIN sys.databases AS b ON a.database_id = b.database_id").number,
        209
    );
    assert_eq!(err("SELECT NO_SUCH_FUNCTION(1)").number, 195);
    assert_eq!(
        err("SELECT (SELECT database_id FROM sys.databases)").number,
        512
    );
    assert_eq!(err("DELETE FROM sys.databases").number, super::UNSUPPORTED);
    assert_eq!(err("USE no_such_database").number, 911);
    assert_eq!(err("SELECT CONVERT(int, N'abc')").number, 245);
}

#[test]
fn a_batch_gives_one_result_set_per_select() {
    with_world(|w| {
        let sets = run_select(
            w,
            Side::SqlServer,
            &session(),
            "SET NOCOUNT ON; USE master; SELECT 1 AS a; SELECT N'x' AS b WHERE 1 = 0;",
        )
        .unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].rows, [vec![i(1)]]);
        assert!(sets[1].rows.is_empty());
        assert_eq!(sets[1].columns[0].name, "b");
    });
}

#[test]
fn guards_and_the_public_key_export_follow_the_world() {
    let lab = Lab::tailspin(4).unwrap();
    let cert = CertificateName::new("Cert_TailspinSql_endpoint").unwrap();
    let export = tsql::export_certificate_public_key(&cert);
    let guard = format!(
        "SELECT 1 FROM sys.certificates WHERE name = {}",
        crate::tsql::SqlIdentifier::literal(&cert)
    );
    lab.sim.with_world(|w| {
        let sets = run_select(w, Side::SqlServer, &session(), export.expose_sql()).unwrap();
        assert_eq!(sets[0].columns[0].name, "PublicKey");
        assert_eq!(sets[0].rows, [vec![Value::Null]]);
        assert!(!exists(w, Side::SqlServer, &session(), &guard).unwrap());
        assert!(
            !exists(
                w,
                Side::SqlServer,
                &session(),
                "SELECT 1 FROM sys.symmetric_keys WHERE symmetric_key_id = 101"
            )
            .unwrap()
                || w.source.master_key
        );
    });
    lab.sim.with_world_mut(|w| {
        w.source.certificates.insert(
            cert.to_string(),
            crate::sim::world::SqlCertificate {
                name: cert.to_string(),
                subject: Some("x".into()),
                expiry: None,
                der: vec![0x30, 0x82, 0, 1, 7],
                has_private_key: true,
                trusted_issuer_for: None,
            },
        );
    });
    lab.sim.with_world(|w| {
        let sets = run_select(w, Side::SqlServer, &session(), export.expose_sql()).unwrap();
        assert_eq!(
            sets[0].rows,
            [vec![Value::Binary(vec![0x30, 0x82, 0, 1, 7])]]
        );
        assert!(exists(w, Side::SqlServer, &session(), &guard).unwrap());
        let certs = run_select(
            w,
            Side::SqlServer,
            &session(),
            tsql::probe_certificates(std::slice::from_ref(&cert)).expose_sql(),
        )
        .unwrap();
        assert_eq!(certs[0].rows.len(), 1);
        // The DAG guards: no DAG yet.
        let dag = LinkName::new("no_such_dag").unwrap();
        let sets = run_select(
            w,
            Side::SqlServer,
            &session(),
            tsql::probe_replica_states(&dag).expose_sql(),
        )
        .unwrap();
        assert!(sets[0].rows.is_empty());
        let by_db =
            tsql::probe_database_replica_states_by_database(&[
                DatabaseName::new("ToyStore").unwrap()
            ]);
        assert!(run_select(w, Side::ManagedInstance, &session(), by_db.expose_sql()).is_ok());
        assert!(
            run_select(
                w,
                Side::SqlServer,
                &session(),
                tsql::probe_seeding_stats().expose_sql()
            )
            .is_ok()
        );
    });
}
