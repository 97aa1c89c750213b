//! Readiness: `assess`, `ReadinessReport` and the lab's facts.

use milink_core::assess::{
    AssessOptions, DatabaseFacts, Fix, InstanceFacts, ReadinessReport, Scope, TargetFacts,
};
use milink_core::names::DatabaseName;
use milink_core::time::{Clock, SystemClock, Timestamp};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{from_py, from_py_named, to_py};
use crate::errors::{invalid, py_err as error};

/// The readiness report: verdicts, findings with evidence and fixes, the SKU recommendation.
#[pyclass(module = "milink", name = "ReadinessReport", frozen)]
pub(crate) struct PyReadinessReport {
    pub(crate) inner: ReadinessReport,
}

impl From<ReadinessReport> for PyReadinessReport {
    fn from(inner: ReadinessReport) -> Self {
        PyReadinessReport { inner }
    }
}

fn names(databases: Vec<String>) -> PyResult<Vec<DatabaseName>> {
    databases
        .into_iter()
        .map(|d| DatabaseName::new(d).map_err(error))
        .collect()
}

#[pymethods]
impl PyReadinessReport {
    /// The SQL Server instance assessed.
    #[getter]
    fn server(&self) -> &str {
        &self.inner.server
    }

    /// The instance's verdict: `Ready`, `ReadyWithWarnings` or `NotReady`.
    #[getter]
    fn instance_verdict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.instance_verdict)
    }

    /// Each assessed database's verdict, by name.
    #[getter]
    fn verdicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for d in &self.inner.databases {
            out.set_item(d.name.as_str(), to_py(py, &d.verdict)?)?;
        }
        Ok(out)
    }

    /// Every finding, as dicts.
    #[getter]
    fn findings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.findings)
    }

    /// The blocking findings, as dicts.
    #[getter]
    fn blockers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let blockers: Vec<_> = self.inner.blockers().collect();
        to_py(py, &blockers)
    }

    /// The whole report as a dict (the shape of `to_json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    /// Pretty JSON with a schema version.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// Markdown.
    fn to_markdown(&self) -> String {
        self.inner.to_markdown()
    }

    /// A self-contained HTML page.
    fn to_html(&self) -> String {
        self.inner.to_html()
    }

    /// The HTML notebooks show: the report as a fragment whose styles apply to it only.
    fn _repr_html_(&self) -> String {
        self.inner.to_html_fragment()
    }

    /// The findings as a pandas DataFrame, one row per finding; raises ImportError without pandas.
    fn to_dataframe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pandas = py.import("pandas").map_err(|e| {
            PyImportError::new_err(format!(
                "to_dataframe needs pandas, which is not installed (pip install pandas): {e}"
            ))
        })?;
        let rows = PyList::empty(py);
        for f in &self.inner.findings {
            let row = PyDict::new(py);
            row.set_item("rule_id", &f.rule_id)?;
            row.set_item("severity", to_py(py, &f.severity)?)?;
            // An instance finding is labelled as such, never a missing database.
            let (scope, database) = match &f.scope {
                Scope::Instance => ("instance", "(instance)"),
                Scope::Database(d) => ("database", d.as_str()),
            };
            row.set_item("scope", scope)?;
            row.set_item("database", database)?;
            row.set_item("title", &f.title)?;
            row.set_item("evidence", &f.evidence.summary)?;
            let details = PyDict::new(py);
            for (k, v) in &f.evidence.details {
                details.set_item(k, v)?;
            }
            row.set_item("evidence_details", details)?;
            let (fix_kind, fix) = match &f.fix {
                Fix::Sql(sql) => (Some("sql"), Some(sql.sql.as_str())),
                Fix::Action(action) => (Some("action"), Some(action.as_str())),
                Fix::None => (None, None),
            };
            row.set_item("fix_kind", fix_kind)?;
            row.set_item("fix", fix)?;
            rows.append(row)?;
        }
        let columns = [
            "rule_id",
            "severity",
            "scope",
            "database",
            "title",
            "evidence",
            "evidence_details",
            "fix_kind",
            "fix",
        ];
        let kwargs = PyDict::new(py);
        kwargs.set_item("columns", columns.to_vec())?;
        pandas.getattr("DataFrame")?.call((rows,), Some(&kwargs))
    }

    /// Raises NotReadyError (with this report as `.report`) unless the instance and every one
    /// of `databases` can be linked; an empty list checks the instance only.
    #[pyo3(signature = (databases = Vec::new()))]
    fn ensure_ready(&self, databases: Vec<String>) -> PyResult<()> {
        self.inner.ensure_ready(&names(databases)?).map_err(error)
    }

    /// Reads a report written by `to_json`.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        ReadinessReport::from_json(text)
            .map(Self::from)
            .map_err(error)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyReadinessReport>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let databases: Vec<String> = self
            .inner
            .databases
            .iter()
            .map(|d| format!("{}={:?}", d.name, d.verdict))
            .collect();
        format!(
            "<ReadinessReport {} instance={:?} {}>",
            self.inner.server,
            self.inner.instance_verdict,
            databases.join(" ")
        )
    }
}

fn timestamp(value: &Bound<'_, PyAny>) -> PyResult<Timestamp> {
    // `True` is an int to Python: it would be read as 1 ms after the epoch.
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid(
            "now: a bool is not a time: give a datetime or milliseconds since the Unix epoch",
        ));
    }
    if let Ok(ms) = value.extract::<u64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    let seconds: f64 = value
        .call_method0("timestamp")
        .and_then(|s| s.extract())
        .map_err(|_| invalid("now: give a datetime or milliseconds since the Unix epoch"))?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(invalid("now: must not be before the Unix epoch"));
    }
    Ok(Timestamp::from_millis((seconds * 1000.0).round() as u64))
}

/// Refuses facts that name one database twice (SQL Server compares names case-insensitively
/// under the usual collations): the report would keep one of them, so the verdict would depend
/// on the order of the list.
fn distinct_databases(databases: &[DatabaseFacts]) -> PyResult<()> {
    milink_core::assess::distinct_databases(databases).map_err(|e| invalid(e.to_string()))
}

/// Assesses the readiness of `databases` of `instance` for a link to `target`.
///
/// Facts are dicts in the serde shape of the core's `InstanceFacts`, `DatabaseFacts` and
/// `TargetFacts` (see `tailspin_facts()`); `options` is an `AssessOptions` dict. The keyword
/// arguments override it: `failback`, `link` (the databases to link; default every one given)
/// and `now` (a datetime or milliseconds since the epoch; default `options["now"]`, else the
/// current time).
#[pyfunction]
#[pyo3(signature = (instance, databases, target = None, *, options = None, failback = None, link = None, now = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn assess(
    py: Python<'_>,
    instance: &Bound<'_, PyAny>,
    databases: &Bound<'_, PyAny>,
    target: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyAny>>,
    failback: Option<bool>,
    link: Option<Vec<String>>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyReadinessReport> {
    let instance: InstanceFacts = from_py("instance facts", instance)?;
    let databases: Vec<DatabaseFacts> = from_py_named("database facts", "database", databases)?;
    distinct_databases(&databases)?;
    let target: Option<TargetFacts> = target.map(|t| from_py("target facts", t)).transpose()?;
    let given_now = options.is_some_and(|o| o.get_item("now").is_ok());
    let mut options: AssessOptions = match options {
        Some(o) => from_py("options", o)?,
        None => AssessOptions::default(),
    };
    if let Some(failback) = failback {
        options.failback = failback;
    }
    if let Some(link) = link {
        options.databases = Some(names(link)?);
    }
    match now {
        Some(now) => options.now = timestamp(now)?,
        None if !given_now => options.now = SystemClock.now(),
        None => {}
    }
    let report = py
        .detach(|| {
            crate::errors::guarded(|| {
                milink_core::assess::assess(&instance, &databases, target.as_ref(), &options)
            })
        })
        .map_err(|p| crate::errors::from_panic(p.as_ref()))?;
    Ok(report.into())
}

/// The Tailspin lab's facts for `seed`: `{"instance", "databases", "target", "options"}`, ready
/// for `assess(**tailspin_facts())`; the world of `Lab.tailspin(seed)` (same default seed), so
/// both give the same facts.
#[pyfunction]
#[pyo3(signature = (seed = 7))]
pub(crate) fn tailspin_facts(
    py: Python<'_>,
    #[pyo3(from_py_with = crate::args::seed)] seed: u64,
) -> PyResult<Bound<'_, PyAny>> {
    let lab = milink_core::sim::Lab::tailspin(seed).map_err(error)?;
    crate::lab::world_facts(py, &lab)
}
