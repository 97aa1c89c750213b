//! Python bindings for milink (module `milink`): glue only.
#![forbid(unsafe_code)]

mod args;
mod connect;
mod convert;
mod errors;
mod lab;
mod report;
mod runtime;
mod serve;
mod session;

use milink_core::Error;
use milink_core::names::{
    AgName, DatabaseName, EndpointHost, LinkName, MiFqdn, NameError as CoreNameError, ServerName,
    TcpPort,
};
use milink_core::tsql::{self, Batch};
use pyo3::prelude::*;

fn parse<T>(f: impl FnOnce() -> Result<T, CoreNameError>) -> PyResult<T> {
    f().map_err(|e| errors::py_err(Error::Name(e)))
}

/// The text of a batch without secrets (none of the builders exposed here carries one).
fn text(batch: Batch) -> String {
    batch.display_sql().to_owned()
}

/// Bracket-quotes an identifier: `[` + value with `]` doubled + `]`.
#[pyfunction]
fn quote_ident(value: &str) -> String {
    tsql::quote_ident(value)
}

/// A Unicode string literal: `N'` + value with `'` doubled + `'`.
#[pyfunction]
fn quote_nstring(value: &str) -> String {
    tsql::quote_nstring(value)
}

/// A binary literal: `0x` followed by two upper-case hex digits per byte.
#[pyfunction]
fn binary_literal(value: &[u8]) -> String {
    tsql::binary_literal(value)
}

/// The endpoint URL for a host (IP address or DNS name) and port: `TCP://host:port`.
#[pyfunction]
#[pyo3(signature = (host, port = 5022))]
fn tcp_url(host: &str, #[pyo3(from_py_with = args::port)] port: u16) -> PyResult<String> {
    let host = parse(|| EndpointHost::new(host))?;
    let port = parse(|| TcpPort::new(port))?;
    Ok(host.tcp_url(port))
}

/// `CREATE AVAILABILITY GROUP` on SQL Server; `database=None` when the managed instance is the
/// initial primary.
#[pyfunction]
#[pyo3(signature = (ag, database, replica, endpoint_url, cluster_type_none = true))]
fn create_availability_group_sql(
    ag: &str,
    database: Option<&str>,
    replica: &str,
    endpoint_url: &str,
    cluster_type_none: bool,
) -> PyResult<String> {
    let spec = tsql::CreateAgSpec {
        ag: parse(|| AgName::new(ag))?,
        databases: match database {
            Some(db) => vec![parse(|| DatabaseName::new(db))?],
            None => Vec::new(),
        },
        replica: parse(|| ServerName::new(replica))?,
        endpoint_url: endpoint_url.to_owned(),
        cluster_type_none,
    };
    Ok(text(tsql::create_availability_group(&spec)))
}

/// `CREATE AVAILABILITY GROUP … WITH (DISTRIBUTED)`: the link, on SQL Server.
#[pyfunction]
#[pyo3(signature = (dag, sql_ag, sql_listener_url, mi_ag, mi_fqdn, mi_database = None, session_timeout_s = 20))]
fn create_distributed_availability_group_sql(
    dag: &str,
    sql_ag: &str,
    sql_listener_url: &str,
    mi_ag: &str,
    mi_fqdn: &str,
    mi_database: Option<&str>,
    #[pyo3(from_py_with = args::session_timeout_s)] session_timeout_s: u16,
) -> PyResult<String> {
    let spec = tsql::CreateDagSpec {
        dag: parse(|| LinkName::new(dag))?,
        sql_ag: parse(|| AgName::new(sql_ag))?,
        sql_listener_url: sql_listener_url.to_owned(),
        mi_ag: parse(|| AgName::new(mi_ag))?,
        mi_fqdn: parse(|| MiFqdn::new(mi_fqdn))?,
        mi_database: match mi_database {
            Some(db) => Some(parse(|| DatabaseName::new(db))?),
            None => None,
        },
        session_timeout_s,
    };
    Ok(text(tsql::create_distributed_availability_group(&spec)))
}

/// Planned failover of the link (`ALTER AVAILABILITY GROUP … FAILOVER`), run on the primary.
#[pyfunction]
fn failover_dag_sql(dag: &str) -> PyResult<String> {
    let dag = parse(|| LinkName::new(dag))?;
    Ok(text(tsql::failover_dag(&dag)))
}

/// Drops an availability group if it exists.
#[pyfunction]
fn drop_availability_group_sql(name: &str) -> PyResult<String> {
    let name = parse(|| AgName::new(name))?;
    Ok(text(tsql::drop_availability_group(&name)))
}

/// Drops the distributed availability group (the link) if it exists.
#[pyfunction]
fn drop_distributed_availability_group_sql(name: &str) -> PyResult<String> {
    let name = parse(|| LinkName::new(name))?;
    Ok(text(tsql::drop_distributed_availability_group(&name)))
}

/// The `milink._milink` extension module.
#[pymodule]
fn _milink(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", milink_core::VERSION)?;
    errors::register(m)?;
    m.add_class::<report::PyReadinessReport>()?;
    m.add_class::<session::PyLinkSession>()?;
    m.add_class::<lab::PyLab>()?;
    m.add_class::<serve::PyServedLab>()?;
    m.add_class::<connect::PyCredential>()?;
    m.add_class::<connect::PySqlServer>()?;
    m.add_class::<connect::PyManagedInstance>()?;
    m.add_function(wrap_pyfunction!(connect::gather, m)?)?;
    m.add_function(wrap_pyfunction!(connect::gather_async, m)?)?;
    m.add_function(wrap_pyfunction!(connect::link_spec, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::sleep_interruptibly, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(report::assess, m)?)?;
    m.add_function(wrap_pyfunction!(report::tailspin_facts, m)?)?;
    m.add_function(wrap_pyfunction!(quote_ident, m)?)?;
    m.add_function(wrap_pyfunction!(quote_nstring, m)?)?;
    m.add_function(wrap_pyfunction!(binary_literal, m)?)?;
    m.add_function(wrap_pyfunction!(tcp_url, m)?)?;
    m.add_function(wrap_pyfunction!(create_availability_group_sql, m)?)?;
    m.add_function(wrap_pyfunction!(
        create_distributed_availability_group_sql,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(failover_dag_sql, m)?)?;
    m.add_function(wrap_pyfunction!(drop_availability_group_sql, m)?)?;
    m.add_function(wrap_pyfunction!(
        drop_distributed_availability_group_sql,
        m
    )?)?;
    Ok(())
}
