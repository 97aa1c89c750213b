//! The requests the server received, counted by method and route kind (`PUT link`,
//! `GET operation (AzureAsyncOperation)`, …): how many calls each lifecycle path costs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::route::{Route, Target, parse_path};

/// Requests by `"{METHOD} {route kind}"`, in key order.
pub type RequestCounts = BTreeMap<String, u64>;

/// A shared tally of the requests a server received; clones count into the same tally.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<RequestCounts>>);

impl RequestCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts one request.
    pub(crate) fn add(&self, method: &str, path: &str) {
        let key = format!("{method} {}", route_kind(path));
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
    }
}

/// What a path addresses, in a word or two: `link`, `failover`, `setRole`, `links`,
/// `trust certificate`, `endpoint certificate`, `instance`, `operation (Location)`,
/// `operation (AzureAsyncOperation)`, `databases`, `encryption protector`, `permissions`,
/// `subnet`, `failover groups`; Arc's as `arc …` (`arc createManagedInstanceLink`,
/// `arc operation (AzureAsyncOperation)`, …); `unrouted` when no route matches.
pub fn route_kind(path: &str) -> &'static str {
    if super::arc::is_arc(path) {
        return super::arc::route_kind(path);
    }
    match parse_path(path) {
        None => "unrouted",
        Some(Route::Operation { status: true, .. }) => "operation (AzureAsyncOperation)",
        Some(Route::Operation { status: false, .. }) => "operation (Location)",
        Some(Route::Subnet { .. }) => "subnet",
        Some(Route::FailoverGroups { .. }) => "failover groups",
        Some(Route::Instance(_, target)) => match target {
            Target::Instance => "instance",
            Target::Dags => "links",
            Target::Dag(_) => "link",
            Target::DagFailover(_) => "failover",
            Target::DagSetRole(_) => "setRole",
            Target::Databases => "databases",
            Target::TrustCertificates => "trust certificates",
            Target::TrustCertificate(_) => "trust certificate",
            Target::EndpointCertificate(_) => "endpoint certificate",
            Target::EncryptionProtector(_) => "encryption protector",
            Target::CallerPermissions => "permissions",
        },
    }
}

/// `after - before`, key by key, without the zeros: what happened between two snapshots.
pub fn difference(after: &RequestCounts, before: &RequestCounts) -> RequestCounts {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi";

    #[test]
    fn requests_are_counted_by_method_and_route_kind() {
        let counter = RequestCounter::default();
        let twin = counter.clone();
        counter.add("PUT", &format!("{MI}/distributedAvailabilityGroups/DAG_x"));
        twin.add("PUT", &format!("{MI}/distributedAvailabilityGroups/DAG_y"));
        counter.add(
            "POST",
            &format!("{MI}/distributedAvailabilityGroups/d/failover"),
        );
        counter.add(
            "GET",
            "/subscriptions/s/providers/Microsoft.Sql/locations/l/distributedAvailabilityGroupsAzureAsyncOperation/1",
        );
        counter.add("GET", "/nowhere");
        let before = counter.snapshot();
        assert_eq!(
            before,
            RequestCounts::from([
                ("GET operation (AzureAsyncOperation)".to_owned(), 1),
                ("GET unrouted".to_owned(), 1),
                ("POST failover".to_owned(), 1),
                ("PUT link".to_owned(), 2),
            ])
        );
        twin.add("PUT", &format!("{MI}/serverTrustCertificates/c"));
        assert_eq!(
            difference(&counter.snapshot(), &before),
            RequestCounts::from([("PUT trust certificate".to_owned(), 1)])
        );
    }
}
