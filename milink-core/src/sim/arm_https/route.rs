//! The REST API's grammar: a request's path and query parsed into what it addresses. Pure.

/// The resource scope of an instance route: `/subscriptions/{s}/resourceGroups/{rg}/providers/
/// Microsoft.Sql/managedInstances/{mi}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceScope {
    pub(crate) subscription: String,
    pub(crate) resource_group: String,
    pub(crate) instance: String,
}

/// The collections with long-running operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collection {
    Dags,
    TrustCertificates,
}

impl Collection {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Collection::Dags => "distributedAvailabilityGroups",
            Collection::TrustCertificates => "serverTrustCertificates",
        }
    }
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The managed instance itself.
    Instance,
    /// `distributedAvailabilityGroups`.
    Dags,
    /// `distributedAvailabilityGroups/{name}`.
    Dag(String),
    /// `distributedAvailabilityGroups/{name}/failover`.
    DagFailover(String),
    /// `distributedAvailabilityGroups/{name}/setRole`.
    DagSetRole(String),
    /// `databases`: the instance's managed databases.
    Databases,
    /// `serverTrustCertificates`.
    TrustCertificates,
    /// `serverTrustCertificates/{name}`.
    TrustCertificate(String),
    /// `endpointCertificates/{endpointType}`.
    EndpointCertificate(String),
    /// `encryptionProtector/{name}` (`current`).
    EncryptionProtector(String),
    /// `providers/Microsoft.Authorization/permissions`: what the caller may do here.
    CallerPermissions,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Under a managed instance.
    Instance(InstanceScope, Target),
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql/locations/{l}/instanceFailoverGroups`.
    FailoverGroups {
        subscription: String,
        resource_group: String,
        location: String,
    },
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{v}/subnets/{n}`.
    Subnet {
        subscription: String,
        resource_group: String,
        vnet: String,
        subnet: String,
    },
    /// `/subscriptions/{s}/providers/Microsoft.Sql/locations/{loc}/{coll}OperationResults/{id}`
    /// (`status: false`) or `…/{coll}AzureAsyncOperation/{id}` (`status: true`).
    Operation {
        subscription: String,
        location: String,
        collection: Collection,
        id: String,
        status: bool,
    },
}

/// Decodes `%XX` escapes of one path segment; `None` if an escape or the UTF-8 is invalid.
pub(crate) fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is(segment: &str, keyword: &str) -> bool {
    segment.eq_ignore_ascii_case(keyword)
}

/// Parses a path (without the query). `None`: no route.
pub(crate) fn parse_path(path: &str) -> Option<Route> {
    let raw: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let segs: Vec<String> = raw
        .iter()
        .map(|s| decode_segment(s))
        .collect::<Option<Vec<_>>>()?;
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [sub_kw, sub, prov, ns, loc_kw, loc, ops, id]
            if is(sub_kw, "subscriptions")
                && is(prov, "providers")
                && is(ns, "Microsoft.Sql")
                && is(loc_kw, "locations") =>
        {
            let (collection, status) = operation_collection(ops)?;
            Some(Route::Operation {
                subscription: (*sub).to_owned(),
                location: (*loc).to_owned(),
                collection,
                id: (*id).to_owned(),
                status,
            })
        }
        [sub_kw, sub, rg_kw, rg, prov, ns, mi_kw, mi, rest @ ..]
            if is(sub_kw, "subscriptions")
                && is(rg_kw, "resourceGroups")
                && is(prov, "providers")
                && is(ns, "Microsoft.Sql")
                && is(mi_kw, "managedInstances") =>
        {
            let target = match rest {
                [] => Target::Instance,
                [c] if is(c, "distributedAvailabilityGroups") => Target::Dags,
                [c, n] if is(c, "distributedAvailabilityGroups") => Target::Dag((*n).to_owned()),
                [c, n, a] if is(c, "distributedAvailabilityGroups") && is(a, "failover") => {
                    Target::DagFailover((*n).to_owned())
                }
                [c, n, a] if is(c, "distributedAvailabilityGroups") && is(a, "setRole") => {
                    Target::DagSetRole((*n).to_owned())
                }
                [c] if is(c, "databases") => Target::Databases,
                [c] if is(c, "serverTrustCertificates") => Target::TrustCertificates,
                [c, n] if is(c, "serverTrustCertificates") => {
                    Target::TrustCertificate((*n).to_owned())
                }
                [c, n] if is(c, "endpointCertificates") => {
                    Target::EndpointCertificate((*n).to_owned())
                }
                [c, n] if is(c, "encryptionProtector") => {
                    Target::EncryptionProtector((*n).to_owned())
                }
                [p, a, c]
                    if is(p, "providers")
                        && is(a, "Microsoft.Authorization")
                        && is(c, "permissions") =>
                {
                    Target::CallerPermissions
                }
                _ => return None,
            };
            Some(Route::Instance(
                InstanceScope {
                    subscription: (*sub).to_owned(),
                    resource_group: (*rg).to_owned(),
                    instance: (*mi).to_owned(),
                },
                target,
            ))
        }
        [sub_kw, sub, rg_kw, rg, prov, ns, loc_kw, loc, groups]
            if is(sub_kw, "subscriptions")
                && is(rg_kw, "resourceGroups")
                && is(prov, "providers")
                && is(ns, "Microsoft.Sql")
                && is(loc_kw, "locations")
                && is(groups, "instanceFailoverGroups") =>
        {
            Some(Route::FailoverGroups {
                subscription: (*sub).to_owned(),
                resource_group: (*rg).to_owned(),
                location: (*loc).to_owned(),
            })
        }
        [
            sub_kw,
            sub,
            rg_kw,
            rg,
            prov,
            ns,
            vnet_kw,
            vnet,
            subnet_kw,
            subnet,
        ] if is(sub_kw, "subscriptions")
            && is(rg_kw, "resourceGroups")
            && is(prov, "providers")
            && is(ns, "Microsoft.Network")
            && is(vnet_kw, "virtualNetworks")
            && is(subnet_kw, "subnets") =>
        {
            Some(Route::Subnet {
                subscription: (*sub).to_owned(),
                resource_group: (*rg).to_owned(),
                vnet: (*vnet).to_owned(),
                subnet: (*subnet).to_owned(),
            })
        }
        _ => None,
    }
}

fn operation_collection(segment: &str) -> Option<(Collection, bool)> {
    for c in [Collection::Dags, Collection::TrustCertificates] {
        let name = c.as_str();
        let Some(head) = segment.get(..name.len()) else {
            continue;
        };
        if !is(head, name) {
            continue;
        }
        let tail = segment.get(name.len()..).unwrap_or_default();
        if is(tail, "OperationResults") {
            return Some((c, false));
        }
        if is(tail, "AzureAsyncOperation") {
            return Some((c, true));
        }
    }
    None
}

/// The `api-version` query parameter: `Ok(None)` when absent, `Err` when the query is malformed.
pub(crate) fn api_version(query: Option<&str>) -> Result<Option<String>, ()> {
    let Some(query) = query else {
        return Ok(None);
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode_segment(k)
            .ok_or(())?
            .eq_ignore_ascii_case("api-version")
        {
            return decode_segment(v).map(Some).ok_or(());
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str =
        "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi";

    #[test]
    fn instance_paths_parse_by_the_grammar() {
        let scope = InstanceScope {
            subscription: "sub".into(),
            resource_group: "rg".into(),
            instance: "mi".into(),
        };
        let cases = [
            (String::new(), Target::Instance),
            ("/distributedAvailabilityGroups".into(), Target::Dags),
            (
                "/DistributedAvailabilityGroups/a%20b%2Fc".into(),
                Target::Dag("a b/c".into()),
            ),
            (
                "/distributedAvailabilityGroups/d/failover".into(),
                Target::DagFailover("d".into()),
            ),
            (
                "/distributedAvailabilityGroups/d/setRole".into(),
                Target::DagSetRole("d".into()),
            ),
            ("/serverTrustCertificates".into(), Target::TrustCertificates),
            ("/databases".into(), Target::Databases),
            (
                "/encryptionProtector/current".into(),
                Target::EncryptionProtector("current".into()),
            ),
            (
                "/providers/Microsoft.Authorization/permissions".into(),
                Target::CallerPermissions,
            ),
            (
                "/serverTrustCertificates/c".into(),
                Target::TrustCertificate("c".into()),
            ),
            (
                "/endpointCertificates/DATABASE_MIRRORING".into(),
                Target::EndpointCertificate("DATABASE_MIRRORING".into()),
            ),
        ];
        for (tail, target) in cases {
            let path = format!("{MI}{tail}");
            assert_eq!(
                parse_path(&path),
                Some(Route::Instance(scope.clone(), target)),
                "{path}"
            );
        }
        for bad in [
            format!("{MI}/administrators"),
            format!("{MI}/databases/db/other"),
            format!("{MI}/providers/Microsoft.Authorization/roleAssignments"),
            format!("{MI}/distributedAvailabilityGroups/d/other"),
            format!("{MI}/distributedAvailabilityGroups//failover"),
            format!("{MI}/serverTrustCertificates/%zz"),
            "/subscriptions/sub/resourceGroups/rg".to_owned(),
        ] {
            assert_eq!(parse_path(&bad), None, "{bad}");
        }
    }

    #[test]
    fn subnet_and_failover_group_paths_parse() {
        assert_eq!(
            parse_path(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v%201/subnets/mi"
            ),
            Some(Route::Subnet {
                subscription: "s".into(),
                resource_group: "rg".into(),
                vnet: "v 1".into(),
                subnet: "mi".into(),
            })
        );
        assert_eq!(
            parse_path(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/locations/westeurope/instanceFailoverGroups"
            ),
            Some(Route::FailoverGroups {
                subscription: "s".into(),
                resource_group: "rg".into(),
                location: "westeurope".into(),
            })
        );
        assert_eq!(
            parse_path(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets"
            ),
            None
        );
    }

    #[test]
    fn operation_paths_and_api_versions_parse() {
        let p = "/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/distributedAvailabilityGroupsAzureAsyncOperation/42";
        assert_eq!(
            parse_path(p),
            Some(Route::Operation {
                subscription: "s".into(),
                location: "westeurope".into(),
                collection: Collection::Dags,
                id: "42".into(),
                status: true,
            })
        );
        let p = "/subscriptions/s/providers/Microsoft.Sql/locations/l/serverTrustCertificatesOperationResults/7";
        assert!(matches!(
            parse_path(p),
            Some(Route::Operation {
                collection: Collection::TrustCertificates,
                status: false,
                ..
            })
        ));
        assert_eq!(
            api_version(Some("a=1&api-version=2025-01-01")),
            Ok(Some("2025-01-01".into()))
        );
        assert_eq!(api_version(Some("a=1")), Ok(None));
        assert_eq!(api_version(None), Ok(None));
        assert_eq!(api_version(Some("api-version=%zz")), Err(()));
    }
}
