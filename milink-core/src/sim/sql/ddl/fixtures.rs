//! Test fixtures: every [`SourceOp`] of a link in the Tailspin lab, the render context, an
//! [`Evaluator`] that answers the builders' guards from the world, and a world comparison.

use crate::lifecycle::{AvailabilityMode, SourceOp};
use crate::secret::Secret;
use crate::sim::tds::{ResultSet, SessionInfo, SqlError};
use crate::sim::{Lab, World};
use crate::sqlserver::RenderContext;
use crate::tsql;

use super::exec::Evaluator;
use super::token::{TokenKind, tokenize};

/// The render context of the tests (the shipped root CAs).
pub(crate) fn render_context() -> RenderContext {
    RenderContext::new(Secret::new("Str0ng!MasterKey#1"))
}

/// A session in `master`.
pub(crate) fn session() -> SessionInfo {
    SessionInfo {
        spid: 51,
        user: "milink".into(),
        database: "master".into(),
        strict: false,
    }
}

/// Every op of the link's life on SQL Server, in an order where each one can succeed.
pub(crate) fn link_ops(lab: &Lab) -> Vec<SourceOp> {
    let s = &lab.spec;
    let fqdn = s.target.fqdn.clone();
    vec![
        SourceOp::EnsureMasterKey,
        SourceOp::EnsureEndpointCertificate {
            name: s.source.certificate.clone(),
            subject: format!("Certificate for {}", s.source.certificate),
            expiry: s.source.certificate_expiry,
        },
        SourceOp::EnsureMirroringEndpoint {
            spec: tsql::MirroringEndpointSpec {
                name: s.source.endpoint_name.clone(),
                port: s.source.endpoint_port,
                certificate: s.source.certificate.clone(),
                auth: tsql::EndpointAuth::Certificate,
                encryption: tsql::EndpointEncryption::Aes,
            },
        },
        SourceOp::ExportCertificatePublicKey {
            name: s.source.certificate.clone(),
        },
        SourceOp::ImportInstanceCertificate {
            fqdn: fqdn.clone(),
            der: vec![0x30, 0x82, 0x01, 0x02, 0xAA],
        },
        SourceOp::EnsureRootCaTrust,
        SourceOp::CreateAvailabilityGroup {
            spec: tsql::CreateAgSpec {
                ag: s.source.ag.clone(),
                databases: s.databases.clone(),
                replica: s.source.server.clone(),
                endpoint_url: s.source.endpoint_url(),
                cluster_type_none: true,
            },
        },
        SourceOp::GrantCreateAnyDatabase {
            ag: s.source.ag.clone(),
        },
        SourceOp::CreateDistributedAvailabilityGroup {
            spec: tsql::CreateDagSpec {
                dag: s.link.clone(),
                sql_ag: s.source.ag.clone(),
                sql_listener_url: s.source.endpoint_url(),
                mi_ag: s.target.ag.clone(),
                mi_fqdn: fqdn,
                mi_database: None,
                session_timeout_s: s.session_timeout_s,
            },
        },
        SourceOp::SetAvailabilityMode {
            dag: s.link.clone(),
            sql_ag: s.source.ag.clone(),
            mi_ag: s.target.ag.clone(),
            mode: AvailabilityMode::SynchronousCommit,
        },
        SourceOp::Failover {
            dag: s.link.clone(),
        },
        SourceOp::SetRoleSecondary {
            dag: s.link.clone(),
        },
        SourceOp::ForceFailover {
            dag: s.link.clone(),
        },
        SourceOp::DropDistributedAvailabilityGroup {
            dag: s.link.clone(),
        },
        SourceOp::DropAvailabilityGroup {
            ag: s.source.ag.clone(),
        },
    ]
}

/// Answers the builders' `IF [NOT] EXISTS` guards from the world, by the catalog view the
/// guard reads and the names and values it compares (a fake of the query engine).
pub(crate) struct WorldGuard;

impl Evaluator for WorldGuard {
    fn exists(&self, w: &World, _: &SessionInfo, sql: &str) -> Result<bool, SqlError> {
        let toks = tokenize(sql)?;
        let words: Vec<String> = toks
            .iter()
            .filter_map(|t| match &t.kind {
                TokenKind::Word(x) => Some(x.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let strs: Vec<&str> = toks
            .iter()
            .filter_map(|t| match &t.kind {
                TokenKind::Str { value, .. } => Some(value.as_str()),
                _ => None,
            })
            .collect();
        let has = |x: &str| words.iter().any(|w| w == x);
        let name = strs.first().copied().unwrap_or("");
        Ok(if has("symmetric_keys") {
            w.source.master_key
        } else if has("database_mirroring_endpoints") {
            w.source
                .endpoint
                .as_ref()
                .is_some_and(|e| e.name.as_str() == name)
        } else if has("dm_hadr_availability_replica_states") {
            let role = strs.get(1).copied().unwrap_or("");
            w.source.dags.values().any(|d| {
                d.name.as_str() == name && format!("{:?}", d.role).eq_ignore_ascii_case(role)
            })
        } else if has("availability_groups") {
            let distributed = toks.windows(3).any(|t| {
                t[0].is_word("is_distributed")
                    && t[1].is_punct("=")
                    && t[2].kind == TokenKind::Number("1".into())
            });
            if distributed {
                w.source.dags.keys().any(|d| d.as_str() == name)
            } else {
                w.source.ags.keys().any(|a| a.as_str() == name)
            }
        } else if has("certificates") {
            w.source.certificates.contains_key(name)
        } else {
            panic!("a guard the fake does not know: {sql}")
        })
    }

    fn select(&self, _: &World, _: &SessionInfo, _: &str) -> Result<Vec<ResultSet>, SqlError> {
        Ok(vec![ResultSet::default()])
    }
}

/// The world as JSON for comparison: without the random generator's state, and without the
/// bytes of the root CAs (in process they are drawn at random, over T-SQL they are the
/// certificates the batch carries).
pub(crate) fn comparable(w: &World) -> serde_json::Value {
    let mut v = serde_json::to_value(w).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("rng");
    }
    if let Some(certs) = v
        .get_mut("source")
        .and_then(|s| s.get_mut("certificates"))
        .and_then(|c| c.as_object_mut())
    {
        for (name, c) in certs.iter_mut() {
            if name == "MicrosoftPKI" || name == "DigiCertPKI" {
                c["der"] = serde_json::json!([]);
            }
        }
    }
    v
}

/// The first path where two JSON values differ, for a short failure message.
pub(crate) fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q).map(|d| format!("{k}.{d}")),
                _ => Some(k.clone()),
            })
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q).map(|d| format!("{i}.{d}"))),
        _ if a == b => None,
        _ => Some(format!("({a} vs {b})").chars().take(300).collect()),
    }
}
