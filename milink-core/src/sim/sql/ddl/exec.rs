//! Running parsed statements against the world.
//!
//! The [`Executor`] keeps what lives for a batch (variables, the current database, the error a
//! `CATCH` block handles) and runs one top-level statement at a time on a `&mut World`, so its
//! caller holds the world's lock only for a statement. Guards (`IF [NOT] EXISTS (…)`) and
//! read-only statements go to an [`Evaluator`]: the query engine in the handler, a fake in
//! tests. Variables (`DECLARE`d, or `sp_executesql`'s `@P1…`) are bound into their text as
//! literals before it is evaluated.
//!
//! Errors: a failing statement ends the batch (its error is the batch's last outcome), unless
//! it runs inside `BEGIN TRY`, whose `CATCH` block then runs with `ERROR_MESSAGE()` and
//! `ERROR_NUMBER()` set. (SQL Server goes on after many statement-level errors of class 16;
//! every batch milink sends ends with its one changing statement, so the two rules agree there.)

use std::collections::BTreeMap;

use crate::lifecycle::LinkName;
use crate::names::{AgName, CertificateName, DatabaseName, EndpointName, ServerName, TcpPort};
use crate::ports::PortError;

use super::super::super::tds::{ResultSet, SessionInfo, SqlError, Value};
use super::super::super::world::World;
use super::apply::{EndpointSettings, NewAg, NewDag};
use super::ast::{Condition, Ddl, EndpointBody, EndpointState, Expr, Query, Statement};
use super::token::{Token, TokenKind, syntax_error};
use super::values::{cert_id, cert_name, literal, parse_mi_listener_url, undeclared};

pub use super::classify::classify;
pub(crate) use super::values::like;

/// Answers the read-only parts of a batch: guards and queries.
pub trait Evaluator {
    /// Whether `sql` (the subquery of `IF [NOT] EXISTS (…)`) returns a row.
    fn exists(&self, world: &World, session: &SessionInfo, sql: &str) -> Result<bool, SqlError>;
    /// The result sets of a read-only statement.
    fn select(
        &self,
        world: &World,
        session: &SessionInfo,
        sql: &str,
    ) -> Result<Vec<ResultSet>, SqlError>;
}

/// An [`Evaluator`] from a guard function alone: every query answers one empty result set.
pub struct GuardFn<'a>(pub &'a dyn Fn(&str) -> Result<bool, SqlError>);

impl Evaluator for GuardFn<'_> {
    fn exists(&self, _: &World, _: &SessionInfo, sql: &str) -> Result<bool, SqlError> {
        (self.0)(sql)
    }

    fn select(&self, _: &World, _: &SessionInfo, _: &str) -> Result<Vec<ResultSet>, SqlError> {
        Ok(vec![ResultSet::default()])
    }
}

/// A SQL Server error from the world's [`PortError`] (`sql:<number>`; anything else, which the
/// world functions never return, as a class 16 error 50000).
pub fn sql_error(e: &PortError) -> SqlError {
    let number = e
        .code()
        .strip_prefix("sql:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(50000);
    let class = if number == super::token::SYNTAX_ERROR {
        15
    } else {
        16
    };
    SqlError::new(number, class, e.message.clone())
}

/// Runs a parsed batch's statements, one top-level statement per call.
pub struct Executor<'e> {
    eval: &'e dyn Evaluator,
    session: SessionInfo,
    sql: &'e str,
    tokens: &'e [Token],
    vars: BTreeMap<String, Value>,
    caught: Option<SqlError>,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variables may hold anything the client sent: not shown.
        f.debug_struct("Executor")
            .field("database", &self.session.database)
            .finish_non_exhaustive()
    }
}

fn var_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl<'e> Executor<'e> {
    /// An executor for the batch `sql` (tokenized as `tokens`) in `session`.
    pub fn new(
        eval: &'e dyn Evaluator,
        session: SessionInfo,
        sql: &'e str,
        tokens: &'e [Token],
    ) -> Self {
        Executor {
            eval,
            session,
            sql,
            tokens,
            vars: BTreeMap::new(),
            caught: None,
        }
    }

    /// Binds a variable (an `sp_executesql` parameter such as `@P1`).
    pub fn bind(&mut self, name: &str, value: Value) {
        self.vars.insert(var_key(name), value);
    }

    /// The session as the batch left it so far (its database after `USE`).
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// Runs one statement; returns the result sets it produced.
    pub fn run(&mut self, world: &mut World, stmt: &Statement) -> Result<Vec<ResultSet>, SqlError> {
        match stmt {
            Statement::Use(db) => {
                let system = ["master", "msdb", "model", "tempdb"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(db));
                let user = DatabaseName::new(db.as_str())
                    .is_ok_and(|d| world.source.databases.contains_key(&d));
                if !system && !user {
                    return Err(SqlError::new(
                        911,
                        16,
                        format!(
                            "Database '{db}' does not exist. Make sure that the name is entered \
                             correctly."
                        ),
                    ));
                }
                self.session.database.clone_from(db);
                Ok(Vec::new())
            }
            Statement::SetOption { .. } => Ok(Vec::new()),
            Statement::Query(q) => {
                let text = self.bound_text(q)?;
                self.eval.select(world, &self.session, &text)
            }
            Statement::If {
                condition,
                then,
                otherwise,
            } => {
                if self.condition(world, condition)? {
                    self.run(world, then)
                } else if let Some(o) = otherwise {
                    self.run(world, o)
                } else {
                    Ok(Vec::new())
                }
            }
            Statement::Block(body) => self.run_all(world, body),
            Statement::TryCatch { body, handler } => match self.run_all(world, body) {
                Ok(sets) => Ok(sets),
                Err(e) => {
                    let outer = self.caught.replace(e);
                    let r = self.run_all(world, handler);
                    self.caught = outer;
                    r
                }
            },
            Statement::Declare(vars) => {
                for (name, init) in vars {
                    let v = match init {
                        Some(e) => self.eval_expr(world, e)?,
                        None => Value::Null,
                    };
                    self.vars.insert(var_key(name), v);
                }
                Ok(Vec::new())
            }
            Statement::Exec { procedure, args } => {
                self.exec(world, procedure, args)?;
                Ok(Vec::new())
            }
            Statement::Throw(None) => Err(self.caught.clone().unwrap_or_else(|| {
                SqlError::new(
                    10704,
                    15,
                    "To rethrow an error, a THROW statement must be used inside a CATCH block.",
                )
            })),
            Statement::Throw(Some((n, m, _))) => {
                let number = match self.eval_expr(world, n)? {
                    Value::Int(i) => u32::try_from(i).unwrap_or(0),
                    _ => 0,
                };
                if number < 50000 {
                    return Err(SqlError::new(
                        35100,
                        16,
                        "Error number in THROW statement is outside the valid range. Specify an \
                         error number in the valid range of 50000 to 2147483647.",
                    ));
                }
                let message = match self.eval_expr(world, m)? {
                    Value::String(s) => s,
                    _ => String::new(),
                };
                Err(SqlError::new(number, 16, message))
            }
            Statement::Ddl(d) => {
                self.ddl(world, d).map_err(|e| sql_error(&e))?;
                Ok(Vec::new())
            }
        }
    }

    fn run_all(
        &mut self,
        world: &mut World,
        body: &[Statement],
    ) -> Result<Vec<ResultSet>, SqlError> {
        let mut sets = Vec::new();
        for s in body {
            sets.extend(self.run(world, s)?);
        }
        Ok(sets)
    }

    /// The text of `q` with its variables replaced by their values as literals.
    fn bound_text(&self, q: &Query) -> Result<String, SqlError> {
        let toks = self.tokens.get(q.first..q.last).unwrap_or(&[]);
        let (Some(first), Some(last)) = (toks.first(), toks.last()) else {
            return Err(syntax_error(""));
        };
        let mut out = String::new();
        let mut at = first.start;
        for t in toks {
            if let TokenKind::Variable(v) = &t.kind
                && !v.starts_with("@@")
            {
                let value = self.vars.get(&var_key(v)).ok_or_else(|| undeclared(v))?;
                out.push_str(self.sql.get(at..t.start).unwrap_or(""));
                out.push_str(&literal(value));
                at = t.end;
            }
        }
        out.push_str(self.sql.get(at..last.end).unwrap_or(""));
        Ok(out)
    }

    fn condition(&mut self, world: &mut World, c: &Condition) -> Result<bool, SqlError> {
        match c {
            Condition::Exists { negated, query } => {
                let text = self.bound_text(query)?;
                Ok(self.eval.exists(world, &self.session, &text)? != *negated)
            }
            Condition::Like {
                value,
                negated,
                pattern,
            } => {
                let (Value::String(v), Value::String(p)) = (
                    self.eval_expr(world, value)?,
                    self.eval_expr(world, pattern)?,
                ) else {
                    return Ok(false); // NULL: unknown, neither LIKE nor NOT LIKE.
                };
                Ok(like(&v.to_lowercase(), &p.to_lowercase()) != *negated)
            }
            Condition::Equals {
                left,
                negated,
                right,
            } => {
                let (l, r) = (self.eval_expr(world, left)?, self.eval_expr(world, right)?);
                if l == Value::Null || r == Value::Null {
                    return Ok(false);
                }
                let eq = match (&l, &r) {
                    (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                    _ => l == r,
                };
                Ok(eq != *negated)
            }
        }
    }

    fn eval_expr(&self, world: &World, e: &Expr) -> Result<Value, SqlError> {
        Ok(match e {
            Expr::Query(q) => {
                let text = format!("SELECT {}", self.bound_text(q)?);
                let sets = self.eval.select(world, &self.session, &text)?;
                sets.first()
                    .and_then(|s| s.rows.first())
                    .and_then(|r| r.first())
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            Expr::Literal(v) => v.clone(),
            Expr::Var(v) => self
                .vars
                .get(&var_key(v))
                .cloned()
                .ok_or_else(|| undeclared(v))?,
            Expr::CertId(name) => match self.eval_expr(world, name)? {
                Value::String(n) => cert_id(world, &n).map_or(Value::Null, Value::Int),
                _ => Value::Null,
            },
            Expr::ErrorMessage => self
                .caught
                .as_ref()
                .map_or(Value::Null, |e| Value::String(e.message.clone())),
            Expr::ErrorNumber => self.caught.as_ref().map_or(Value::Null, |e| {
                Value::Int(i32::try_from(e.number).unwrap_or(i32::MAX))
            }),
        })
    }

    fn exec(
        &mut self,
        world: &mut World,
        procedure: &str,
        args: &[(Option<String>, Expr)],
    ) -> Result<(), SqlError> {
        if !procedure.eq_ignore_ascii_case("sp_certificate_add_issuer")
            || !world.source.version.capabilities().link_supported
        {
            return Err(SqlError::new(
                2812,
                16,
                format!("Could not find stored procedure '{procedure}'."),
            ));
        }
        if let Some((Some(name), _)) = args.iter().find(|(n, _)| n.is_some()) {
            return Err(SqlError::new(
                8145,
                16,
                format!("{name} is not a parameter for procedure {procedure}."),
            ));
        }
        let [(_, id), (_, dns)] = args else {
            return Err(SqlError::new(
                201,
                16,
                format!(
                    "Procedure or function '{procedure}' expects 2 parameters (the certificate id \
                     and the DNS name); {} were supplied.",
                    args.len()
                ),
            ));
        };
        let id = match self.eval_expr(world, id)? {
            Value::Int(i) => Some(i),
            _ => None,
        };
        let Value::String(dns) = self.eval_expr(world, dns)? else {
            return Err(SqlError::new(
                15151,
                16,
                "The DNS name passed to sp_certificate_add_issuer is NULL.",
            ));
        };
        let Some(name) = id.and_then(|i| cert_name(world, i)) else {
            return Err(SqlError::new(
                15151,
                16,
                "Cannot find the certificate, because it does not exist or you do not have \
                 permission.",
            ));
        };
        world
            .sql_add_certificate_issuer(&name, &dns)
            .map_err(|e| sql_error(&e))
    }

    fn ddl(&self, world: &mut World, d: &Ddl) -> Result<(), PortError> {
        match d {
            Ddl::CreateMasterKey { .. } => world.sql_create_master_key(),
            Ddl::CreateCertificate {
                name,
                subject,
                expiry,
            } => world.sql_create_certificate(name, subject, *expiry),
            Ddl::CreateCertificateFromBinary { name, der } => {
                world.sql_create_certificate_from_binary(name, der)
            }
            Ddl::DropCertificate(name) => world.sql_drop_certificate(name),
            Ddl::CreateEndpoint { name, body } => {
                let ep = EndpointName::new(name.as_str()).map_err(|_| bad_name(name))?;
                world.sql_create_endpoint(&ep, &endpoint_settings(body)?)
            }
            Ddl::AlterEndpoint { name, body } => {
                world.sql_alter_endpoint(name, &endpoint_settings(body)?)
            }
            Ddl::DropEndpoint(name) => world.sql_drop_endpoint(name),
            Ddl::CreateAvailabilityGroup {
                name,
                cluster_type,
                databases,
                replicas,
            } => {
                let ag = AgName::new(name.as_str()).map_err(|_| bad_name(name))?;
                let [replica] = replicas.as_slice() else {
                    return Err(unsupported(
                        "an availability group with more than one replica",
                    ));
                };
                let server =
                    ServerName::new(replica.name.as_str()).map_err(|_| bad_name(&replica.name))?;
                if !server
                    .as_str()
                    .eq_ignore_ascii_case(world.source.server.as_str())
                {
                    return Err(crate::sim::errors::sql(
                        35237,
                        format!(
                            "None of the specified replicas for availability group {name} maps \
                             to the instance of SQL Server to which you are connected. Reenter \
                             the command, specifying this server instance to host one of the \
                             replicas."
                        ),
                    ));
                }
                let dbs = databases
                    .iter()
                    .map(|d| DatabaseName::new(d.as_str()).map_err(|_| bad_name(d)))
                    .collect::<Result<Vec<_>, _>>()?;
                world.sql_create_ag(&NewAg {
                    name: &ag,
                    databases: &dbs,
                    replica: &server,
                    endpoint_url: replica.endpoint_url.as_deref().unwrap_or(""),
                    cluster_type_none: cluster_type.as_deref() == Some("NONE"),
                })
            }
            Ddl::CreateDistributedAvailabilityGroup { name, groups } => {
                let dag = LinkName::new(name.as_str()).map_err(|_| bad_name(name))?;
                let local = |g: &super::ast::ReplicaOptions| {
                    world.source.ags.keys().any(|a| a.as_str() == g.name)
                };
                let (sql, mi) = match groups.as_slice() {
                    [a, b] if !local(a) && local(b) => (b, a),
                    [a, b] => (a, b),
                    _ => return Err(unsupported("a distributed AG without two groups")),
                };
                let sql_ag = AgName::new(sql.name.as_str()).map_err(|_| bad_name(&sql.name))?;
                let mi_ag = AgName::new(mi.name.as_str()).map_err(|_| bad_name(&mi.name))?;
                let url = mi.listener_url.as_deref().unwrap_or("");
                let (fqdn, database) = parse_mi_listener_url(url)?;
                world.sql_create_dag(&NewDag {
                    name: &dag,
                    sql_ag: &sql_ag,
                    sql_listener_url: sql.listener_url.as_deref().unwrap_or(""),
                    mi_ag: &mi_ag,
                    mi_fqdn: &fqdn,
                    mi_database: database.as_ref(),
                    session_timeout_s: sql.session_timeout.unwrap_or(10),
                })
            }
            Ddl::GrantCreateAnyDatabase(ag) => world.sql_grant_create_any_database(ag),
            Ddl::ModifyDistributed { name, groups } => {
                let modes: Vec<_> = groups
                    .iter()
                    .filter_map(|g| g.availability_mode.map(|m| (g.name.as_str(), m)))
                    .collect();
                world.sql_set_dag_modes(name, &modes)
            }
            Ddl::Failover(name) => world.tsql_failover(&link(name)?).map(|_| ()),
            Ddl::ForceFailover(name) => world.sql_force_failover(&link(name)?),
            Ddl::SetRoleSecondary(name) => world.sql_set_role_secondary(&link(name)?),
            Ddl::DropAvailabilityGroup(name) => world.sql_drop_availability_group(name),
        }
    }
}

fn link(name: &str) -> Result<LinkName, PortError> {
    LinkName::new(name).map_err(|_| super::apply::not_found("availability group", name))
}

fn bad_name(name: &str) -> PortError {
    crate::sim::errors::sql(
        102,
        format!("Incorrect syntax near '{name}': the simulated server cannot hold this name."),
    )
}

fn unsupported(what: &str) -> PortError {
    crate::sim::errors::sql(
        102,
        format!("The simulated SQL Server does not model {what}."),
    )
}

fn endpoint_settings(body: &EndpointBody) -> Result<EndpointSettings, PortError> {
    let port = body
        .port
        .map(|p| TcpPort::new(p).map_err(|_| bad_name(&p.to_string())))
        .transpose()?;
    let certificate = body
        .certificate
        .as_ref()
        .map(|c| CertificateName::new(c.as_str()).map_err(|_| bad_name(c)))
        .transpose()?;
    Ok(EndpointSettings {
        port,
        certificate,
        started: body.state.map(|s| s == EndpointState::Started),
        aes: body.encryption.as_ref().map(|e| {
            e.mode != "DISABLED"
                && (e.algorithms.is_empty() || e.algorithms.iter().any(|a| a == "AES"))
        }),
    })
}
