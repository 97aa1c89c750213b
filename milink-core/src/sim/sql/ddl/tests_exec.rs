//! Execution: every op's rendered batches parse, run and change the world as `exec_source`
//! does (refusals included, with the same error numbers); the batch's port call is the op's;
//! one wrong keyword in a builder's output is error 102 and changes nothing.

use super::exec::{Executor, GuardFn, classify};
use super::fixtures::{
    WorldGuard, comparable, first_difference, link_ops, render_context, session,
};
use super::parse_script;
use crate::lifecycle::SourceOp;
use crate::sim::faults::{Call, SourceCall};
use crate::sim::tds::{SessionInfo, SqlError, Value};
use crate::sim::{Lab, World};

/// Runs `sql` with `eval`, stopping at the first error.
fn run_sql(w: &mut World, eval: &dyn super::exec::Evaluator, sql: &str) -> Result<(), SqlError> {
    let (tokens, script) = parse_script(sql)?;
    let mut ex = Executor::new(eval, session(), sql, &tokens);
    for st in &script.statements {
        ex.run(w, st)?;
    }
    Ok(())
}

/// An op over T-SQL: its batches in order, stopping at the first error (as `exec_source` does).
fn run_wire(w: &mut World, op: &SourceOp) -> Result<(), u32> {
    for batch in op.render(&render_context()).unwrap() {
        run_sql(w, &WorldGuard, batch.expose_sql()).map_err(|e| e.number)?;
    }
    Ok(())
}

fn run_in_process(w: &mut World, op: &SourceOp) -> Result<(), u32> {
    w.exec_source(op)
        .map(|_| ())
        .map_err(|e| e.code().trim_start_matches("sql:").parse().unwrap())
}

/// Runs `ops` on two copies of `start`, in process and over T-SQL, and checks after each op
/// that both answered the same and left the same world. Returns the answers.
fn compare(start: &World, ops: &[SourceOp]) -> Vec<Result<(), u32>> {
    let mut a = start.clone();
    let mut b = start.clone();
    let mut answers = Vec::new();
    for op in ops {
        let ra = run_in_process(&mut a, op);
        let rb = run_wire(&mut b, op);
        assert_eq!(ra, rb, "{op:?}");
        // Only the root CAs' bytes are drawn in process and carried by the batch over T-SQL.
        b.rng = a.rng.clone();
        let diff = first_difference(&comparable(&a), &comparable(&b));
        assert!(diff.is_none(), "world differs after {op:?}: {diff:?}");
        answers.push(ra);
    }
    answers
}

fn lab() -> Lab {
    Lab::tailspin(11).unwrap()
}

#[test]
fn every_op_changes_the_world_as_exec_source_does_and_again_idempotently() {
    let lab = lab();
    let ops = link_ops(&lab);
    let start = lab.sim.with_world(World::clone);
    let mut twice = ops.clone();
    twice.extend(ops.iter().cloned());
    let answers = compare(&start, &twice);
    // The planned failover is refused (the instance has not joined); the rest succeeds.
    for (op, r) in twice.iter().zip(&answers) {
        match op {
            SourceOp::Failover { .. } => assert_eq!(*r, Err(41142), "{op:?}"),
            SourceOp::GrantCreateAnyDatabase { .. }
            | SourceOp::SetAvailabilityMode { .. }
            | SourceOp::SetRoleSecondary { .. }
            | SourceOp::ForceFailover { .. }
                if answers.len() > ops.len() && r.is_err() => {}
            _ => {}
        }
    }
    assert!(
        answers[..ops.len()].iter().filter(|r| r.is_err()).count() <= 2,
        "{answers:?}"
    );
}

#[test]
fn refusals_have_the_same_numbers_over_tsql() {
    let lab = lab();
    let ops = link_ops(&lab);
    let start = lab.sim.with_world(World::clone);
    let by = |name: &str| {
        ops.iter()
            .find(|o| format!("{o:?}").starts_with(name))
            .cloned()
            .unwrap()
    };
    // A certificate before the master key; an endpoint before its certificate; AG DDL on
    // objects that do not exist.
    let answers = compare(
        &start,
        &[
            by("EnsureEndpointCertificate"),
            by("EnsureMirroringEndpoint"),
            by("GrantCreateAnyDatabase"),
            by("CreateDistributedAvailabilityGroup"),
            by("SetAvailabilityMode"),
            by("Failover"),
        ],
    );
    assert_eq!(
        answers,
        [
            Err(15581),
            Err(15151),
            Err(15151),
            Err(15151),
            Err(15151),
            Err(15151)
        ]
    );
    // (The public key of a missing certificate is a NULL row from the query engine, which the
    // adapter answers as 15151: not a DDL refusal.)
    // The AG of a DAG cannot be dropped; Always On disabled; a build without the link.
    let mut ready = start.clone();
    for op in &ops[..9] {
        let _ = run_in_process(&mut ready, op);
    }
    assert_eq!(
        compare(&ready, &[by("DropAvailabilityGroup")]),
        [Err(41190)]
    );
    let mut no_hadr = start.clone();
    no_hadr.source.hadr_enabled = false;
    assert_eq!(
        compare(&no_hadr, &[by("CreateAvailabilityGroup")]),
        [Err(35221)]
    );
    let mut old = start.clone();
    old.source.version = crate::names::SqlVersion::new(15, 0, 2000, 5);
    assert_eq!(compare(&old, &[by("EnsureRootCaTrust")]), [Err(2812)]);
}

#[test]
fn each_batch_is_the_port_call_of_its_op() {
    let lab = lab();
    let mut w = lab.sim.with_world(World::clone);
    for op in link_ops(&lab) {
        for batch in op.render(&render_context()).unwrap() {
            let (_, script) = parse_script(batch.expose_sql()).unwrap();
            assert_eq!(
                classify(&w, &script.statements),
                Some(Call::Source(SourceCall::of(&op))),
                "{op:?}"
            );
        }
        let _ = run_in_process(&mut w, &op);
    }
    #[cfg(feature = "tds")]
    {
        let link = crate::sqlserver::adapter::link_state_batch(&lab.spec.link);
        let (_, script) = parse_script(link.expose_sql()).unwrap();
        assert_eq!(
            classify(&w, &script.statements),
            Some(Call::SourceLinkState)
        );
    }
    let probe = crate::tsql::probe_replica_states(&lab.spec.link);
    let (_, script) = parse_script(probe.expose_sql()).unwrap();
    assert_eq!(
        classify(&w, &script.statements),
        Some(Call::SourceLinkState)
    );
    let workload = crate::tsql::probe_workload_activity(&lab.spec.databases);
    let (_, script) = parse_script(workload.expose_sql()).unwrap();
    assert_eq!(classify(&w, &script.statements), None);
}

#[test]
fn every_rendered_op_parses_and_runs_with_a_not_exists_guard() {
    let lab = lab();
    let mut w = lab.sim.with_world(World::clone);
    let seen = std::cell::RefCell::new(Vec::new());
    let not_exists = |sql: &str| {
        seen.borrow_mut().push(sql.to_string());
        Ok(false)
    };
    let guard = GuardFn(&not_exists);
    for op in link_ops(&lab).iter().take(10) {
        for batch in op.render(&render_context()).unwrap() {
            run_sql(&mut w, &guard, batch.expose_sql()).unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
        }
    }
    assert!(w.source.master_key && w.source.root_ca_trust);
    let dag = w.source.dags.get(&lab.spec.link).unwrap();
    assert_eq!(dag.sql_listener_url, lab.spec.source.endpoint_url());
    assert_eq!(dag.mi_fqdn, lab.spec.target.fqdn);
    assert_eq!(dag.session_timeout_s, lab.spec.session_timeout_s);
    assert_eq!(
        dag.mi_mode,
        crate::lifecycle::AvailabilityMode::SynchronousCommit
    );
    let der = &w.source.certificates["MicrosoftPKI"].der;
    assert_eq!(
        &der[..4],
        [0x30, 0x82, 0x05, 0xA8],
        "the root CA's bytes come from the batch"
    );
    // The guards reached the evaluator as the subquery's text.
    assert!(
        seen.borrow()
            .iter()
            .any(|s| s.starts_with("SELECT 1 FROM sys.symmetric_keys"))
    );
    // The remaining ops parse too.
    for op in link_ops(&lab).iter().skip(10) {
        for batch in op.render(&render_context()).unwrap() {
            parse_script(batch.expose_sql()).unwrap();
        }
    }
}

#[test]
fn one_wrong_keyword_in_a_builders_batch_is_102_and_changes_nothing() {
    let lab = lab();
    let ops = link_ops(&lab);
    let mut w = lab.sim.with_world(World::clone);
    for op in &ops[..9] {
        run_in_process(&mut w, op).unwrap();
    }
    let render = |i: usize| {
        ops[i].render(&render_context()).unwrap()[0]
            .expose_sql()
            .to_string()
    };
    let cases = [
        (render(9), "SYNCHRONOUS_COMMIT", "SYNCHRONUS_COMMIT"),
        (render(2), "DATABASE_MIRRORING (", "DATABASE_MIRRORNG ("),
        (render(2), "ALGORITHM AES", "ALGORITHM AES256"),
        (
            render(0),
            "ENCRYPTION BY PASSWORD",
            "ENCRYPTION WITH PASSWORD",
        ),
        (render(4), "FROM BINARY", "FROM BINARI"),
        (render(6), "SEEDING_MODE = AUTOMATIC", "SEEDING_MODE = AUTO"),
        (render(7), "ANY DATABASE", "ANY DATABASES"),
        (render(8), "WITH (DISTRIBUTED)", "WITH (DISTRIBUTE)"),
        (
            render(12),
            "FORCE_FAILOVER_ALLOW_DATA_LOSS",
            "FORCE_FAILOVER",
        ),
        (render(11), "ROLE = SECONDARY", "ROLE = SECUNDARY"),
        (
            render(13),
            "DROP AVAILABILITY GROUP",
            "DROP AVAILABILITY GROUPS",
        ),
        (render(1), "USE master;", "USE master;\nGO\n"),
    ];
    let before = comparable(&w);
    for (sql, from, to) in cases {
        assert!(sql.contains(from), "{from} not in {sql}");
        let bad = sql.replacen(from, to, 1);
        let e = run_sql(&mut w, &GuardFn(&|_| Ok(false)), &bad).unwrap_err();
        assert_eq!(e.number, 102, "{bad}\n{e:?}");
        assert_eq!(comparable(&w), before, "{bad}");
    }
}

#[test]
fn try_catch_swallows_the_rerun_answer_and_rethrows_the_rest() {
    let lab = lab();
    let mut w = lab.sim.with_world(World::clone);
    let batch = crate::tsql::import_root_ca(
        &crate::names::CertificateName::new("MicrosoftPKI").unwrap(),
        &[0x30, 0x82, 0x00, 0x01],
        crate::tsql::AZURE_DNS_PATTERN,
    );
    run_sql(&mut w, &WorldGuard, batch.expose_sql()).unwrap();
    // Run again: the issuer is already added, the CATCH block takes it.
    run_sql(&mut w, &WorldGuard, batch.expose_sql()).unwrap();
    let c = &w.source.certificates["MicrosoftPKI"];
    assert_eq!(
        c.trusted_issuer_for.as_deref(),
        Some("*.database.windows.net")
    );
    // Any other error is thrown again; THROW outside CATCH is 10704; THROW n is n.
    let e = run_sql(
        &mut w,
        &WorldGuard,
        "BEGIN TRY EXEC sp_certificate_add_issuer NULL, N'x' END TRY \
         BEGIN CATCH IF ERROR_MESSAGE() NOT LIKE N'%already added%' THROW; END CATCH",
    )
    .unwrap_err();
    assert_eq!(e.number, 15151);
    assert_eq!(
        run_sql(&mut w, &WorldGuard, "THROW").unwrap_err().number,
        10704
    );
    let e = run_sql(&mut w, &WorldGuard, "THROW 50007, N'stop', 1").unwrap_err();
    assert_eq!((e.number, e.message.as_str()), (50007, "stop"));
    assert_eq!(
        run_sql(&mut w, &WorldGuard, "EXEC sp_nothing")
            .unwrap_err()
            .number,
        2812
    );
    assert_eq!(
        run_sql(&mut w, &WorldGuard, "USE NoSuchDb")
            .unwrap_err()
            .number,
        911
    );
    assert_eq!(
        run_sql(
            &mut w,
            &WorldGuard,
            "EXEC sp_certificate_add_issuer @certificate_id = 1, @dns = N'x'"
        )
        .unwrap_err()
        .number,
        8145
    );
}

#[test]
fn variables_and_parameters_are_bound_into_guards_as_literals() {
    let lab = lab();
    let mut w = lab.sim.with_world(World::clone);
    let seen = std::cell::RefCell::new(Vec::new());
    let guard = |sql: &str| {
        seen.borrow_mut().push(sql.to_string());
        Ok(true)
    };
    let eval = GuardFn(&guard);
    let sql = "DECLARE @n nvarchar(128) = N'it''s'; \
               IF EXISTS (SELECT 1 FROM t WHERE a = @n AND b = @P1 AND c = @@SPID) SET NOCOUNT ON";
    let (tokens, script) = parse_script(sql).unwrap();
    let mut ex = Executor::new(&eval, session(), sql, &tokens);
    ex.bind("@P1", Value::Binary(vec![0xAB]));
    for st in &script.statements {
        ex.run(&mut w, st).unwrap();
    }
    assert_eq!(
        seen.borrow().as_slice(),
        ["SELECT 1 FROM t WHERE a = N'it''s' AND b = 0xAB AND c = @@SPID"]
    );
    let e = run_sql(&mut w, &eval, "IF EXISTS (SELECT @nope) SET NOCOUNT ON").unwrap_err();
    assert_eq!(e.number, 137);
    let _: SessionInfo = session();
}

#[test]
fn like_matches_percent_and_underscore() {
    use super::exec::like;
    assert!(like(
        "the cert has been already added as a trusted issuer",
        "%already added as a trusted issuer%"
    ));
    assert!(like("abc", "a_c") && like("abc", "%") && like("", "%"));
    assert!(!like("abc", "a_") && !like("abc", "%d%"));
}

#[test]
fn a_declared_scalar_the_parser_does_not_know_is_selected_through_the_evaluator() {
    use crate::sim::tds::{Column, ResultSet, SqlType};
    struct Sixty(std::cell::RefCell<Vec<String>>);
    impl super::exec::Evaluator for Sixty {
        fn exists(&self, _: &World, _: &SessionInfo, sql: &str) -> Result<bool, SqlError> {
            self.0.borrow_mut().push(sql.to_string());
            Ok(false)
        }
        fn select(
            &self,
            _: &World,
            _: &SessionInfo,
            sql: &str,
        ) -> Result<Vec<ResultSet>, SqlError> {
            self.0.borrow_mut().push(sql.to_string());
            Ok(vec![ResultSet {
                columns: vec![Column::new("", SqlType::Int)],
                rows: vec![vec![Value::Int(60)]],
            }])
        }
    }
    let lab = lab();
    let mut w = lab.sim.with_world(World::clone);
    let eval = Sixty(std::cell::RefCell::new(Vec::new()));
    run_sql(
        &mut w,
        &eval,
        "DECLARE @tz int = DATEPART(TZOFFSET, SYSDATETIMEOFFSET()); \
         IF EXISTS (SELECT 1 WHERE @tz = 60) SET NOCOUNT ON",
    )
    .unwrap();
    assert_eq!(
        eval.0.borrow().as_slice(),
        [
            "SELECT DATEPART(TZOFFSET, SYSDATETIMEOFFSET())",
            "SELECT 1 WHERE 60 = 60"
        ]
    );
}
