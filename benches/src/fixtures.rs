//! A synthetic many-database server for the assessment benchmarks: the Tailspin lab's instance
//! and target with ToyStore's facts cloned under new names.

use milink_core::assess::fixtures::{TailspinLab, tailspin, toy_store};
use milink_core::assess::{DatabaseFacts, ReadinessReport};
use milink_core::names::DatabaseName;

use crate::{WorkloadError, ctx};

/// The Tailspin lab with `n` databases, all copies of ToyStore named `ToyStore0001`, … (ids
/// from 5 up). Every database is assessed.
pub fn toy_store_copies(n: usize) -> Result<TailspinLab, WorkloadError> {
    let mut lab = tailspin();
    let template = toy_store();
    lab.databases = (0..n)
        .map(|i| {
            let mut d: DatabaseFacts = template.clone();
            d.name = ctx(
                "database name",
                DatabaseName::new(format!("ToyStore{:04}", i + 1)),
            )?;
            d.database_id = ctx("database id", i32::try_from(i + 5))?;
            if let Some(code) = d.code.as_mut() {
                code.hits.clear();
            }
            Ok(d)
        })
        .collect::<Result<_, WorkloadError>>()?;
    lab.options.databases = None;
    Ok(lab)
}

/// The report of [`toy_store_copies`]`(n)`.
pub fn report_of_copies(n: usize) -> Result<ReadinessReport, WorkloadError> {
    Ok(toy_store_copies(n)?.assess())
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::assess::Scope;

    #[test]
    fn every_copy_gets_a_verdict() {
        let report = report_of_copies(500).unwrap();
        assert_eq!(report.databases.len(), 500);
        assert_eq!(report.databases[499].name.as_str(), "ToyStore0500");
        // Past 100 databases the instance-wide count rules speak up.
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.scope == Scope::Instance && f.rule_id == "NumDbExceeds100"),
            "{:#?}",
            report.findings
        );
        let markdown = report.to_markdown();
        assert!(markdown.contains("ToyStore0500"));
        assert!(report.to_html().contains("ToyStore0500"));
    }
}
