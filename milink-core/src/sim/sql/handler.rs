//! The simulated servers' [`TdsHandler`]: what the loopback TDS server ([`super::super::tds`])
//! receives is parsed here ([`super::ddl`]) and answered from the one simulated world, so what
//! comes over the wire is what the in-process simulator does.
//!
//! - **Login.** One SQL login (user and password, a [`Secret`]) and, when configured, any Entra
//!   access token. A wrong password is error 18456, which never shows the password.
//! - **Batches.** The batch is parsed whole first (a syntax error anywhere is error 102 and
//!   nothing runs, as SQL Server compiles a batch before running it). Then each top-level
//!   statement runs with the world locked for that statement only: read-only statements
//!   (`SELECT`, `WITH`) through [`query::run_select`] (one [`Outcome::Rows`] per result set),
//!   guards through [`query::exists`], DDL through the world functions the in-process
//!   [`World::exec_source`](super::super::World) calls too. A failing statement ends the batch
//!   with its error (see [`super::ddl::exec`]); DDL answers no rows and no count.
//! - **Parameters.** `sp_executesql`'s `@P1…` are bound as variables: into guards and queries as
//!   literals, into `EXEC` arguments as values.
//! - **Sides.** On [`Side::ManagedInstance`] (the instance's T-SQL endpoint) only read-only
//!   statements, `USE` and `SET` are accepted: anything else is error 40510 and nothing runs.
//!
//! **Faults and time.** Each SQL Server batch is one port call, as the in-process
//! [`SimSqlServer`](super::super::SimSqlServer) makes one per op: [`classify`] maps it to a
//! [`Call`] and the handler goes through `World::enter_call` with that call's virtual latency
//! before running it, so a fault plan written for in-process runs fires over the wire too:
//!
//! | batch                                                  | call                                          | latency          |
//! |--------------------------------------------------------|-----------------------------------------------|------------------|
//! | `EXEC sp_certificate_add_issuer` anywhere in it        | `Source(EnsureRootCaTrust)` (one per root CA) | `sql_request`    |
//! | `CREATE MASTER KEY`                                    | `Source(EnsureMasterKey)`                     | `sql_request`    |
//! | `CREATE CERTIFICATE … WITH SUBJECT`                    | `Source(EnsureEndpointCertificate)`           | `sql_request`    |
//! | `CREATE CERTIFICATE … FROM BINARY`                     | `Source(ImportInstanceCertificate)`           | `sql_request`    |
//! | `CREATE` / `ALTER ENDPOINT`                            | `Source(EnsureMirroringEndpoint)`             | `sql_hadr_ddl`   |
//! | `CREATE AVAILABILITY GROUP` (plain / `DISTRIBUTED`)    | `Source(CreateAvailabilityGroup / CreateDistributedAvailabilityGroup)` | `sql_hadr_ddl` |
//! | `ALTER AVAILABILITY GROUP … GRANT CREATE ANY DATABASE` | `Source(GrantCreateAnyDatabase)`              | `sql_hadr_ddl`   |
//! | `… MODIFY AVAILABILITY GROUP ON`                       | `Source(SetAvailabilityMode)`                 | `sql_hadr_ddl`   |
//! | `… FAILOVER` / `FORCE_FAILOVER_ALLOW_DATA_LOSS` / `SET (ROLE = SECONDARY)` | `Source(Failover / ForceFailover / SetRoleSecondary)` | `sql_failover` |
//! | `DROP AVAILABILITY GROUP x`                            | `Source(DropDistributedAvailabilityGroup)` when `x` is a DAG, else `Source(DropAvailabilityGroup)` | `sql_hadr_ddl` |
//! | read-only, calls `CERTENCODED`                         | `Source(ExportCertificatePublicKey)`          | `sql_request`    |
//! | read-only, reads `availability_groups`, `availability_replicas` or a `dm_hadr_*` view | `SourceLinkState` | `sql_request` |
//! | read-only, reads `backupset` (on the managed instance's endpoint only) | `FullBackups` | `sql_request` |
//! | read-only, reads the link's catalog views or DMVs, on the managed instance's endpoint | `InstanceTsqlLinkState` | `sql_request` |
//! | anything else (workload and readiness probes, `DROP CERTIFICATE`/`ENDPOINT`) | none: no fault, no latency, as in process | — |
//!
//! **Readiness probes.** A batch that does not parse, or a read-only batch the query engine
//! answers with an error, is tried as a readiness probe ([`readiness`]): recognised by the first
//! table after a `FROM` and answered from the world's facts with the probe's documented
//! columns. Only on SQL Server's side.
//!
//! An injected SQL error (`sql:<number>`) is answered as that TDS error and nothing runs; any
//! other injected failure (a dropped connection, ARM codes) closes the connection before
//! anything runs; a lost response runs the batch and then closes the connection
//! ([`Outcome::Close`] first, so the client's request fails). On the managed instance's
//! endpoint a batch that reads `msdb.dbo.backupset` is a port call, `FullBackups` with
//! `sql_request` latency, as `SimManagedInstance::full_backups` makes in process, and a batch
//! that reads the link's DMVs is `InstanceTsqlLinkState`, as `SimManagedInstance::link_state`
//! makes in process after its ARM read; its other reads (client sessions) are none, as in
//! process.

use std::sync::Arc;

use async_trait::async_trait;

use crate::lifecycle::Side;
use crate::secret::Secret;

use super::super::faults::Call;
use super::super::tds::{Login, Outcome, Param, ResultSet, SessionInfo, SqlError, TdsHandler};
use super::super::{Sim, World};
use super::ddl::{Evaluator, Executor, Statement, classify, parse_script, sql_error};
use super::{query, readiness};

/// The error the managed instance's endpoint answers to a statement that would change it.
pub const READ_ONLY_ENDPOINT: u32 = 40510;

/// The simulated SQL Server (or the managed instance's T-SQL endpoint) behind a
/// [`TdsServer`](super::super::tds::TdsServer).
#[derive(Clone)]
pub struct SimSqlHandler {
    sim: Sim,
    side: Side,
    user: String,
    password: Secret,
    accept_access_tokens: bool,
    /// Replaces the query engine for guards and queries (tests with a fake).
    evaluator: Option<Arc<dyn Evaluator + Send + Sync>>,
}

impl std::fmt::Debug for SimSqlHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSqlHandler")
            .field("side", &self.side)
            .field("user", &self.user)
            .field("accept_access_tokens", &self.accept_access_tokens)
            .finish_non_exhaustive()
    }
}

impl SimSqlHandler {
    /// A handler serving `side` of `sim`, accepting the SQL login `user` with `password`.
    pub fn new(sim: Sim, side: Side, user: impl Into<String>, password: Secret) -> Self {
        SimSqlHandler {
            sim,
            side,
            user: user.into(),
            password,
            accept_access_tokens: false,
            evaluator: None,
        }
    }

    /// The same handler answering guards and queries with `evaluator` instead of the query
    /// engine ([`query::exists`], [`query::run_select`]): a fake, in tests.
    pub fn with_evaluator(mut self, evaluator: Arc<dyn Evaluator + Send + Sync>) -> Self {
        self.evaluator = Some(evaluator);
        self
    }

    /// The same handler also accepting any Entra access token (FEDAUTH login).
    pub fn accepting_access_tokens(mut self) -> Self {
        self.accept_access_tokens = true;
        self
    }

    /// The side it serves.
    pub fn side(&self) -> Side {
        self.side
    }

    fn run_batch(&self, session: &SessionInfo, sql: &str, params: &[Param]) -> Vec<Outcome> {
        let (tokens, script) = match parse_script(sql) {
            Ok(parsed) => parsed,
            Err(e) => {
                return self
                    .readiness_probe(sql)
                    .unwrap_or_else(|| vec![Outcome::Error(e)]);
            }
        };
        if self.side == Side::ManagedInstance
            && let Some(bad) = script.statements.iter().find(|s| !read_only(s))
        {
            return vec![Outcome::Error(SqlError::new(
                READ_ONLY_ENDPOINT,
                16,
                format!(
                    "Statement '{}' is not supported by the managed instance's T-SQL endpoint in \
                     the simulator, which answers read-only statements only.",
                    statement_name(bad)
                ),
            ))];
        }
        let mut lose_response = false;
        {
            let mut w = self.sim.lock();
            let call = match (self.side, classify(&w, &script.statements)) {
                (Side::SqlServer, Some(Call::FullBackups)) => None,
                (Side::SqlServer, call) => call,
                // The instance's endpoint: the backups read, and the link's DMVs read as the
                // T-SQL half of `SimManagedInstance::link_state`, are port calls in process.
                (Side::ManagedInstance, Some(Call::FullBackups)) => Some(Call::FullBackups),
                (Side::ManagedInstance, Some(Call::SourceLinkState)) => {
                    Some(Call::InstanceTsqlLinkState)
                }
                (Side::ManagedInstance, _) => None,
            };
            if let Some(call) = call {
                let latency = match call {
                    Call::Source(c) => w.source_call_latency(c),
                    _ => w.config.sql_request,
                };
                match w.enter_call(call, latency) {
                    Ok(fate) => lose_response = fate.lose_response,
                    Err(e) if e.code().starts_with("sql:") => {
                        return vec![Outcome::Error(sql_error(&e))];
                    }
                    Err(_) => return vec![Outcome::Close],
                }
            }
        }
        let engine = QueryEvaluator { side: self.side };
        let eval: &dyn Evaluator = match &self.evaluator {
            Some(e) => e.as_ref(),
            None => &engine,
        };
        let mut exec = Executor::new(eval, session.clone(), sql, &tokens);
        for p in params {
            exec.bind(&p.name, p.value.clone());
        }
        let mut out = Vec::new();
        for stmt in &script.statements {
            // The world is locked for one statement at a time, never across an await.
            let result = {
                let mut w = self.sim.lock();
                exec.run(&mut w, stmt)
            };
            match result {
                Ok(sets) => out.extend(sets.into_iter().map(Outcome::Rows)),
                Err(e) => {
                    out.push(Outcome::Error(e));
                    break;
                }
            }
        }
        if lose_response {
            return vec![Outcome::Close];
        }
        // A batch of reads and declarations the query engine could not answer may be a readiness
        // probe; nothing it ran changed the world.
        if script
            .statements
            .iter()
            .all(|s| read_only(s) || matches!(s, Statement::Declare(_)))
            && out.iter().any(|o| matches!(o, Outcome::Error(_)))
            && let Some(answer) = self.readiness_probe(sql)
        {
            return answer;
        }
        out
    }

    /// The answer to a readiness probe the query engine cannot evaluate, from the world's
    /// facts ([`readiness`]); `None` when `sql` is no readiness probe or this is not SQL
    /// Server's side.
    fn readiness_probe(&self, sql: &str) -> Option<Vec<Outcome>> {
        if self.side != Side::SqlServer {
            return None;
        }
        let purpose = readiness::probe_of(sql)?;
        let set = self.sim.with_world(|w| readiness::answer(w, purpose))?;
        Some(vec![Outcome::Rows(set)])
    }
}

fn read_only(s: &Statement) -> bool {
    matches!(
        s,
        Statement::Query(_) | Statement::Use(_) | Statement::SetOption { .. }
    )
}

fn statement_name(s: &Statement) -> &'static str {
    match s {
        Statement::Ddl(_) => "DDL",
        Statement::Exec { .. } => "EXECUTE",
        Statement::If { .. } => "IF",
        Statement::Block(_) | Statement::TryCatch { .. } => "BEGIN",
        Statement::Declare(_) => "DECLARE",
        Statement::Throw(_) => "THROW",
        Statement::Query(_) | Statement::Use(_) | Statement::SetOption { .. } => "SELECT",
    }
}

/// Guards and queries answered by the query engine, as `side` sees the world.
struct QueryEvaluator {
    side: Side,
}

impl Evaluator for QueryEvaluator {
    fn exists(&self, world: &World, session: &SessionInfo, sql: &str) -> Result<bool, SqlError> {
        query::exists(world, self.side, session, sql)
    }

    fn select(
        &self,
        world: &World,
        session: &SessionInfo,
        sql: &str,
    ) -> Result<Vec<ResultSet>, SqlError> {
        query::run_select(world, self.side, session, sql)
    }
}

#[async_trait]
impl TdsHandler for SimSqlHandler {
    async fn login(&self, login: &Login) -> Result<(), SqlError> {
        if login.access_token.is_some() {
            return if self.accept_access_tokens {
                Ok(())
            } else {
                Err(SqlError::login_failed("<token-identified principal>"))
            };
        }
        if login.user == self.user && login.password.expose() == self.password.expose() {
            Ok(())
        } else {
            Err(SqlError::login_failed(&login.user))
        }
    }

    async fn batch(&self, session: &SessionInfo, sql: &str, params: &[Param]) -> Vec<Outcome> {
        self.run_batch(session, sql, params)
    }
}

#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "tds"))]
mod tests_wire;
