//! Whether the SQL Server milink talks to can host the managed instance link at all, checked
//! before anything is prepared (feature `tds`): [`SqlServerAdapter::check_can_host_link`].
//!
//! The link needs (milink-facts §1.1) SQL Server 2016 SP3 with the 2016 Azure Connect pack,
//! 2017 CU31 with the 2017 Azure Connect pack, 2019 CU20, 2022 or 2025. The minimum builds and
//! the Azure Connect pack builds are those of [`SqlVersion::capabilities`] (the assessment's
//! `Link.SqlVersion` and `Link.AzureConnectPack` rules read the same); this module adds only the
//! names of the updates to install. The check reads the build and whether
//! `sp_certificate_add_issuer` exists (what the Azure Connect pack and link-capable cumulative
//! updates install) with [`readiness::instance_properties`], one round trip.

use std::fmt;

use crate::names::SqlVersion;
use crate::ports::{PortError, PortErrorKind};
use crate::tsql::readiness;

use super::adapter::SqlServerAdapter;
use super::adapter::port_error;
use super::connection::CommandKind;
use super::parse::{self, ROWSET_CODE};

/// The [`PortError`] code of a SQL Server that cannot host the link.
pub const UNSUPPORTED_BUILD_CODE: &str = "unsupported_build";

/// The update that brings a major version to its minimum build for the link, by name.
pub fn update_to_install(major: u16) -> Option<&'static str> {
    Some(match major {
        13 => "Service Pack 3 (KB5003279)",
        14 => "cumulative update 31",
        15 => "cumulative update 20 (KB5024276)",
        16 => "the RTM release",
        17 => "the RTM release",
        _ => return None,
    })
}

/// Why this SQL Server cannot host the link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkHostError {
    /// The build is older than the minimum for its major version.
    #[error(
        "{} build {found} cannot host the managed instance link: the minimum for {} is \
         {minimum}; fix: {fix}", found.release_name(), found.release_name()
    )]
    BuildTooOld {
        /// The build found (`SERVERPROPERTY('ProductVersion')`).
        found: SqlVersion,
        /// The minimum build of its major version.
        minimum: SqlVersion,
        /// What to install.
        fix: String,
    },
    /// The major version cannot host the link at all (2014 and earlier: no distributed
    /// availability groups).
    #[error(
        "{} (build {found}) cannot host the managed instance link; fix: upgrade to SQL Server \
         2016 SP3 with the Azure Connect pack, 2017 CU31 with the Azure Connect pack, 2019 \
         CU20, 2022 or 2025", found.release_name()
    )]
    UnsupportedRelease {
        /// The build found.
        found: SqlVersion,
    },
    /// The build is recent enough but `sp_certificate_add_issuer` is missing, so it cannot
    /// trust the Azure root certificates.
    #[error(
        "{} build {found} lacks sys.sp_certificate_add_issuer, which the link needs to trust \
         the Azure root certificates; fix: {fix}", found.release_name()
    )]
    AzureConnectPackMissing {
        /// The build found.
        found: SqlVersion,
        /// The Azure Connect pack build for its major version, if it has one.
        pack: Option<SqlVersion>,
        /// What to install.
        fix: String,
    },
    /// The check could not read the build.
    #[error("cannot check whether SQL Server can host the link: {0}")]
    Read(PortError),
}

impl LinkHostError {
    /// The build found, when it was read.
    pub fn found(&self) -> Option<SqlVersion> {
        match self {
            LinkHostError::BuildTooOld { found, .. }
            | LinkHostError::UnsupportedRelease { found }
            | LinkHostError::AzureConnectPackMissing { found, .. } => Some(*found),
            LinkHostError::Read(_) => None,
        }
    }
}

impl From<LinkHostError> for PortError {
    /// A read failure stays as it was; the others are permanent [`UNSUPPORTED_BUILD_CODE`]
    /// errors with the whole message.
    fn from(e: LinkHostError) -> PortError {
        match e {
            LinkHostError::Read(p) => p,
            other => PortError::permanent(
                PortErrorKind::Other(UNSUPPORTED_BUILD_CODE.to_owned()),
                other.to_string(),
            ),
        }
    }
}

struct Fix<'a>(&'a SqlVersion);

impl fmt::Display for Fix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let caps = v.capabilities();
        let release = v.release_name();
        match (update_to_install(v.major), caps.minimum_build) {
            (Some(update), Some(min)) => write!(
                f,
                "install {release} {update} (build {min}) or a later update"
            )?,
            _ => write!(f, "upgrade to a release that supports the link")?,
        }
        if let Some(pack) = caps.azure_connect_pack {
            write!(f, ", then the {release} Azure Connect pack (build {pack})")?;
        }
        Ok(())
    }
}

/// Judges a build and whether `sp_certificate_add_issuer` exists.
pub fn judge_link_host(version: SqlVersion, has_add_issuer: bool) -> Result<(), LinkHostError> {
    let caps = version.capabilities();
    let Some(minimum) = caps.minimum_build else {
        return Err(LinkHostError::UnsupportedRelease { found: version });
    };
    if !caps.link_supported {
        return Err(LinkHostError::BuildTooOld {
            found: version,
            minimum,
            fix: Fix(&version).to_string(),
        });
    }
    if !has_add_issuer {
        let fix = match caps.azure_connect_pack {
            Some(pack) => format!(
                "install the {} Azure Connect pack (build {pack})",
                version.release_name()
            ),
            None => format!(
                "install the latest cumulative update of {}",
                version.release_name()
            ),
        };
        return Err(LinkHostError::AzureConnectPackMissing {
            found: version,
            pack: caps.azure_connect_pack,
            fix,
        });
    }
    Ok(())
}

impl SqlServerAdapter {
    /// Checks, before anything is prepared, that this SQL Server can host the link: its build
    /// is at least the minimum of its major version and `sp_certificate_add_issuer` exists.
    /// Returns the build.
    pub async fn check_can_host_link(&self) -> Result<SqlVersion, LinkHostError> {
        let batch = readiness::instance_properties();
        let sets = self
            .connection()
            .simple_query(batch.expose_sql(), CommandKind::Probe)
            .await
            .map_err(|e| LinkHostError::Read(port_error(e)))?;
        let rows = match sets.as_slice() {
            [.., last] => &last.rows,
            [] => {
                return Err(LinkHostError::Read(PortError::permanent(
                    PortErrorKind::Other(ROWSET_CODE.to_owned()),
                    "the instance properties probe returned no result set",
                )));
            }
        };
        let version =
            parse::product_version(rows).map_err(|e| LinkHostError::Read(PortError::from(e)))?;
        let has_add_issuer = rows
            .first()
            .map(|r| r.bool("has_certificate_add_issuer"))
            .transpose()
            .map_err(|e| {
                LinkHostError::Read(PortError::permanent(
                    PortErrorKind::Other(ROWSET_CODE.to_owned()),
                    format!("the instance properties probe: {e}"),
                ))
            })?
            .unwrap_or(false);
        judge_link_host(version, has_add_issuer)?;
        Ok(version)
    }
}

#[cfg(test)]
mod tests;
