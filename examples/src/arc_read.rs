//! A read-only look at an Arc-enabled SQL Server: what the opt-in live test
//! (`MILINK_LIVE_ARC_SQL`, `tests/arc_live.rs`) reads from real Azure, and what the same test
//! reads from the simulator to show it sends no write.
//!
//! [`read_arc_instance`] takes only a read-only [`ArcSqlServer`] ([`ArcAccess::ReadOnly`]: it
//! sends `GET`s and the read actions, and refuses anything else before it is sent) and reads
//! the instance's resource and facts, its databases, its availability groups (a link's
//! distributed one too), one telemetry dataset (`getTelemetry`, polled) and the migration
//! assessment the instance holds (`properties.migration.assessment`; nothing is started).

use std::time::Duration;

use milink_core::arc::client::{ArcAccess, ArcError, ArcSqlServer};
use milink_core::arc::{TelemetryDataset, TelemetryRequest};
use milink_core::ports::{PortError, PortErrorKind};
use serde::{Deserialize, Serialize};

/// What [`read_arc_instance`] read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcReading {
    /// The instance's resource name.
    pub name: String,
    /// Its four-part build (`patchLevel`, else `currentVersion`), if Arc reports one.
    pub build: Option<String>,
    /// Its edition.
    pub edition: Option<String>,
    /// Whether Always On availability groups are enabled.
    pub hadr_enabled: Option<bool>,
    /// The agent's connectivity (`Connected`, `Disconnected`, …).
    pub status: Option<String>,
    /// The databases, by name.
    pub databases: Vec<String>,
    /// The availability groups, by name (distributed ones included).
    pub availability_groups: Vec<String>,
    /// The telemetry dataset read and its table's size (columns, rows), or the service's
    /// refusal (e.g. monitoring not enabled), as text.
    pub telemetry: Result<(usize, usize), String>,
    /// The migration assessment the instance holds: its upload time and the number of its
    /// findings for Azure SQL Managed Instance; `None` if none was ever run.
    pub migration_assessment: Option<(String, usize)>,
}

/// Reads the instance behind `arc` (see the module docs), polling telemetry every
/// `poll_wait` at most `max_polls` times. Refused unless `arc` is read-only.
pub async fn read_arc_instance(
    arc: &ArcSqlServer,
    poll_wait: Duration,
    max_polls: u32,
) -> Result<ArcReading, ArcError> {
    if arc.access() != ArcAccess::ReadOnly {
        return Err(ArcError::Port(PortError::permanent(
            PortErrorKind::Other("arc:NotReadOnly".to_owned()),
            "a read-only look needs a read-only client (ArcSqlServer::read_only); nothing was \
             sent",
        )));
    }
    let instance = arc.instance().await?;
    let p = &instance.properties;
    let databases = arc
        .databases()
        .await?
        .into_iter()
        .filter_map(|d| d.name)
        .collect();
    let availability_groups = arc
        .availability_groups()
        .await?
        .into_iter()
        .filter_map(|a| a.name)
        .collect();
    let telemetry = match arc
        .telemetry(
            TelemetryRequest::new(TelemetryDataset::StorageIo),
            poll_wait,
            max_polls,
        )
        .await
    {
        Ok(table) => Ok((table.columns.len(), table.rows.len())),
        // The service may refuse telemetry (monitoring not enabled): say so, it is a reading.
        Err(e @ (ArcError::PermissionDenied { .. } | ArcError::AgentOffline { .. })) => {
            Err(e.to_string())
        }
        Err(ArcError::Port(e)) if matches!(e.kind, PortErrorKind::Arm { status, .. } if (400..500).contains(&status)) => {
            Err(e.to_string())
        }
        Err(e) => return Err(e),
    };
    let migration_assessment = p
        .migration
        .as_ref()
        .and_then(|m| m.assessment.as_ref())
        .map(|a| {
            (
                a.assessment_upload_time
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
                a.managed_instance_findings().count(),
            )
        });
    Ok(ArcReading {
        name: instance.name.clone().unwrap_or_default(),
        build: p.build().map(|v| v.to_string()),
        edition: p.edition.as_ref().map(|e| e.as_str().to_owned()),
        hadr_enabled: p.is_hadr_enabled,
        status: p.status.as_ref().map(|s| s.as_str().to_owned()),
        databases,
        availability_groups,
        telemetry,
        migration_assessment,
    })
}
