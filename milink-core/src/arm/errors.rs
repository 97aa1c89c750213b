//! ARM's failed answers as [`PortError`]s, with the same codes the simulator uses
//! (`arm:<status>:<code>` when the body carries ARM's error envelope, `http:<status>` when it
//! does not; the simulator's `sim::errors` writes the same).
//!
//! What is transient: 408, 429 and 5xx, and the 409s that say the instance or the link is busy;
//! `Retry-After` (seconds) is kept. The 409 codes of milink-facts §2.5 carry their cause and fix;
//! 401 and 403 name the permission the request needs (milink-facts §1.7). The request ids ARM
//! returns (`x-ms-request-id`, `x-ms-correlation-request-id`) end every message, for support.
//!
//! A body is untrusted: only its first [`MAX_BODY`] bytes are read, anything that is not ARM's
//! envelope is shown as (lossy, control characters replaced) text, and nothing here panics.

use std::time::Duration;

use super::models::{ErrorDetail, ErrorResponse, OperationStatus};
use super::{ArmRequest, Method};
use crate::ports::{PortError, PortErrorKind};

/// How much of a response body is read (and at most shown) in an error.
pub const MAX_BODY: usize = 4 * 1024;
/// The largest body read as ARM's error envelope (ARM's are a few hundred bytes); a larger one is
/// shown as text, cut to [`MAX_BODY`].
pub const MAX_PARSED: usize = 1024 * 1024;
/// The longest `Retry-After` honoured; a larger one is clamped to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The longest ARM error code kept as a code; a longer or odd one makes the error `http:<status>`.
const MAX_CODE: usize = 128;

/// The 409 codes that say the instance, a database or the link is busy with another operation:
/// the same request may succeed once it has finished.
pub const BUSY_409: &[&str] = &[
    "ManagedInstanceIsBusy",
    "ConflictingServerOperation",
    "ConflictingDatabaseOperation",
    "ConflictingSystemOperationInProgress",
    "ManagementServiceDatabaseBusy",
];

/// The 409 codes of the link resource (milink-facts §2.5; the specs' error catalogues), each with
/// what it means and what to do.
pub const LINK_409: &[(&str, &str)] = &[
    (
        "DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing",
        "a planned failover needs every database of the link SYNCHRONIZING; switch the link to \
         synchronous commit, wait until the databases synchronize, then fail over",
    ),
    (
        "DistributedAvailabilityGroupFailoverLogSendQueueSizeTooBig",
        "the log send queue is too large for a planned failover; stop or slow the workload on \
         the primary, wait for the queue to drain, then fail over",
    ),
    (
        "DistributedAvailabilityGroupFailoverRedoQueueSizeTooBig",
        "the redo queue on the secondary is too large for a planned failover; wait for redo to \
         catch up, then fail over",
    ),
    (
        "DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole",
        "the instance already has the requested role; nothing to change (read the link's state \
         before retrying)",
    ),
    (
        "DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
        "a role change on this link is already running; wait for it to finish and read the \
         link's state",
    ),
    (
        "DistributedAvailabilityGroupSetRoleFailed",
        "the role change failed; read the link's state and the instance's error log, then retry \
         or break the link",
    ),
    (
        "DistributedAvailabilityGroupSetRolePrimaryPlannedNotSupported",
        "a planned role change to Primary is not supported (2025-01-01); fail over with the \
         failover operation, or use a forced role change",
    ),
    (
        "DistributedAvailabilityGroupDbEncryptedWithSmk",
        "a database of the link is encrypted with the service-managed key; two-way failover \
         needs a customer-managed TDE protector shared with SQL Server",
    ),
    (
        "DistributedAvailabilityGroupDbCannotBeEncryptedWhenPrimaryInMiLink",
        "a database cannot be encrypted while the instance is primary in the link; encrypt it \
         before failing over, or break the link first",
    ),
    (
        "DistributedAvailabilityGroupProtectorCannotBeUpdtedToSmk",
        "the TDE protector cannot change to the service-managed key while the link exists; keep \
         the customer-managed key or break the link",
    ),
    (
        "DistributedAvailabilityGroupMiPrimaryWithGeodr",
        "the instance cannot be primary in the link while it is in a failover group (geo-DR); \
         remove the failover group first",
    ),
    (
        "DistributedAvailabilityGroupForcedFailoverWrongDbVersion",
        "forced failover is not supported on this link (the instance's database format does not \
         match SQL Server's); for a migration, delete the link instead",
    ),
    (
        "ManagedInstanceHasHybridLink",
        "the instance already has a link that forbids this operation; delete that link first",
    ),
];

/// The response headers milink reads from a failed answer (names match case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseIds {
    /// `x-ms-request-id`.
    pub request_id: Option<String>,
    /// `x-ms-correlation-request-id`.
    pub correlation_id: Option<String>,
    /// `Retry-After`, in seconds (clamped to [`MAX_RETRY_AFTER`]).
    pub retry_after: Option<Duration>,
}

impl ResponseIds {
    /// Reads the headers milink uses; others are ignored.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut ids = ResponseIds::default();
        for (name, value) in headers {
            let keep = || Some(clean(value, 128));
            if name.eq_ignore_ascii_case("x-ms-request-id") {
                ids.request_id = keep();
            } else if name.eq_ignore_ascii_case("x-ms-correlation-request-id") {
                ids.correlation_id = keep();
            } else if name.eq_ignore_ascii_case("retry-after") {
                ids.retry_after = retry_after(value);
            }
        }
        ids
    }

    fn suffix(&self) -> String {
        format!(
            " (x-ms-request-id: {}; x-ms-correlation-request-id: {})",
            self.request_id.as_deref().unwrap_or("none"),
            self.correlation_id.as_deref().unwrap_or("none")
        )
    }
}

/// `Retry-After` as seconds. ARM sends delta-seconds; an HTTP date needs a clock to read, so it
/// is not read here (the ARM client reads one against the answer's `Date` and hands seconds on);
/// anything else is ignored (the caller's own interval applies).
pub fn retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The permission a request needs (milink-facts §1.7), from its method and path:
/// `Microsoft.Sql/managedInstances/distributedAvailabilityGroups/write` for a PUT of a link,
/// `…/distributedAvailabilityGroups/setRole/action` for a POST to `setRole`.
pub fn permission(method: Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let provider = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("providers"))
        .and_then(|at| segments.get(at + 1).map(|ns| (at + 2, *ns)));
    let Some((start, namespace)) = provider else {
        return "Microsoft.Sql/managedInstances/read".to_owned();
    };
    let rest = segments.get(start..).unwrap_or_default();
    // Types and names alternate (managedInstances/{mi}/distributedAvailabilityGroups/{dag}); a
    // POST's segment after the last name is its action (`failover`, `setRole`), a GET's the
    // collection it lists.
    let mut types: Vec<&str> = rest.iter().step_by(2).copied().collect();
    let action = (method == Method::Post && !rest.len().is_multiple_of(2) && rest.len() > 1)
        .then(|| types.pop())
        .flatten();
    let verb = match (method, action) {
        (_, Some(action)) => format!("{action}/action"),
        (Method::Get, None) => "read".to_owned(),
        (Method::Put | Method::Patch, None) => "write".to_owned(),
        (Method::Delete, None) => "delete".to_owned(),
        (Method::Post, None) => "action".to_owned(),
    };
    let mut out = namespace.to_owned();
    for t in types {
        out.push('/');
        out.push_str(t);
    }
    out.push('/');
    out.push_str(&verb);
    out
}

/// The error of a failed answer to `request`: HTTP `status`, its `headers` and `body`.
pub fn response_error<'a>(
    request: &ArmRequest,
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> PortError {
    let ids = ResponseIds::from_headers(headers);
    let detail = envelope(body);
    let code = detail
        .as_ref()
        .and_then(|d| d.code.as_deref())
        .filter(|c| is_code(c));
    let kind = match code {
        Some(code) => PortErrorKind::Arm {
            status,
            code: code.to_owned(),
        },
        None => PortErrorKind::Http(status),
    };
    let said = match &detail {
        Some(detail) => describe(detail),
        None => body_text(body),
    };
    let hint = hint(request, status, code);
    let mut message = format!("{} {} returned {status}", request.method, request.path);
    if !said.is_empty() {
        message.push_str(": ");
        message.push_str(&said);
    }
    if let Some(hint) = hint {
        message.push_str(" — ");
        message.push_str(&hint);
    }
    message.push_str(&ids.suffix());
    let transient = matches!(status, 408 | 429 | 500..=599)
        || (status == 409 && code.is_some_and(|c| BUSY_409.contains(&c)));
    let mut error = if transient {
        PortError::transient(kind, message)
    } else {
        PortError::permanent(kind, message)
    };
    error.retry_after = ids.retry_after;
    error
}

/// The error of a long-running operation that ended `Failed` or `Canceled` (its status body's
/// `error`). The status in the code is the one ARM's catalogue gives the code where milink knows
/// it (the 409s above), else 400, as the simulator does; a canceled operation without an error is
/// `arm:409:OperationCancelled`.
pub fn operation_error(request: &ArmRequest, operation: &OperationStatus) -> PortError {
    let detail = operation.error.clone().unwrap_or_else(|| ErrorDetail {
        code: Some("OperationCancelled".to_owned()),
        message: Some(format!("the operation ended {}", operation.status)),
        ..ErrorDetail::default()
    });
    let code = detail.code.as_deref().filter(|c| is_code(c));
    let status = match code {
        Some(c) if c == "OperationCancelled" || BUSY_409.contains(&c) => 409,
        Some(c) if LINK_409.iter().any(|(known, _)| *known == c) => 409,
        _ => 400,
    };
    let kind = match code {
        Some(code) => PortErrorKind::Arm {
            status,
            code: code.to_owned(),
        },
        None => PortErrorKind::Other("arm:operation".to_owned()),
    };
    let mut message = format!(
        "{} {}: the operation ended {}: {}",
        request.method,
        request.path,
        operation.status,
        describe(&detail)
    );
    if let Some(hint) = hint(request, status, code) {
        message.push_str(" — ");
        message.push_str(&hint);
    }
    let transient = status == 409 && code.is_some_and(|c| BUSY_409.contains(&c));
    if transient {
        PortError::transient(kind, message)
    } else {
        PortError::permanent(kind, message)
    }
}

fn hint(request: &ArmRequest, status: u16, code: Option<&str>) -> Option<String> {
    let permission = || permission(request.method, &request.path);
    match status {
        401 => Some(format!(
            "the access token was refused (expired, or for another tenant or audience); sign in \
             again for https://management.azure.com/ with an identity that has {}",
            permission()
        )),
        403 if request.path.contains("/providers/Microsoft.AzureArcData/") => Some(format!(
            "the identity lacks the permission {} on the Arc-enabled SQL Server (grant a role \
             with it on the resource)",
            permission()
        )),
        403 => Some(format!(
            "the identity lacks the permission {} (grant the role SQL Managed Instance \
             Contributor, or a custom role with it){}",
            permission(),
            if request.path.ends_with("/failover") {
                "; the failover action's permission is not documented, check the role's actions"
            } else {
                ""
            }
        )),
        408 | 429 | 500..=599 => Some(
            "the service did not handle the request; it may be retried after the Retry-After \
             interval"
                .to_owned(),
        ),
        409 => code.and_then(|code| {
            if BUSY_409.contains(&code) {
                Some(
                    "another operation on the instance or the link is running; retry after the \
                     Retry-After interval"
                        .to_owned(),
                )
            } else {
                LINK_409
                    .iter()
                    .find(|(known, _)| *known == code)
                    .map(|(_, fix)| (*fix).to_owned())
            }
        }),
        _ => None,
    }
}

/// ARM's error envelope in `body`, if it is one. A body larger than [`MAX_PARSED`] is not parsed
/// at all; what messages keep of either is cut to [`MAX_BODY`].
fn envelope(body: &[u8]) -> Option<ErrorDetail> {
    if body.len() > MAX_PARSED {
        return None;
    }
    let parsed: ErrorResponse = serde_json::from_slice(body).ok()?;
    parsed
        .error
        .filter(|e| e.code.is_some() || e.message.is_some())
}

fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The detail as one line: `message` (target), then the nested details' codes and messages.
fn describe(detail: &ErrorDetail) -> String {
    let mut out = detail.message.clone().unwrap_or_default();
    if let Some(target) = &detail.target {
        out.push_str(&format!(" (target '{target}')"));
    }
    for nested in detail.details.iter().take(8) {
        out.push_str(&format!(
            "; {}: {}",
            nested.code.as_deref().unwrap_or("?"),
            nested.message.as_deref().unwrap_or_default()
        ));
    }
    clean(&out, MAX_BODY)
}

/// A body that is not ARM's envelope, as text: its first [`MAX_BODY`] bytes.
fn body_text(body: &[u8]) -> String {
    let head = body.get(..MAX_BODY).unwrap_or(body);
    let mut text = clean(&String::from_utf8_lossy(head), MAX_BODY);
    if body.len() > MAX_BODY {
        text.push_str(&format!(" … ({} bytes in all)", body.len()));
    }
    text
}

/// `text` without control characters, at most `max` bytes (cut on a character boundary).
fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_owned()
}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
