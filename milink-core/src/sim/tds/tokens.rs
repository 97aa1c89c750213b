//! The tokens of the server's answers: LOGINACK, ENVCHANGE, COLMETADATA, ROW, ERROR, DONE and its
//! kin, and how a handler's [`Outcome`]s become one response message.

use super::types::{COLLATION, put_b_varchar};
use super::{Column, Outcome, SqlError, Value};

const COLMETADATA: u8 = 0x81;
const ROW: u8 = 0xD1;
const ERROR: u8 = 0xAA;
const LOGINACK: u8 = 0xAD;
const ENVCHANGE: u8 = 0xE3;
const RETURNSTATUS: u8 = 0x79;
const DONE: u8 = 0xFD;
const DONEPROC: u8 = 0xFE;
const DONEINPROC: u8 = 0xFF;

const DONE_MORE: u16 = 0x0001;
const DONE_ERROR: u16 = 0x0002;
const DONE_COUNT: u16 = 0x0010;
/// Acknowledges a cancel.
pub(crate) const DONE_ATTN: u16 = 0x0020;

/// TDS 7.4, as LOGINACK states it (big-endian on the wire).
const TDS_74: u32 = 0x7400_0004;
const CURCMD_SELECT: u16 = 0xC1;

/// The error number of an answer the server could not encode (a handler's bug).
const UNENCODABLE: u32 = 50_000;

fn with_u16_len(out: &mut Vec<u8>, token: u8, body: &[u8]) {
    out.push(token);
    out.extend_from_slice(&(body.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    out.extend_from_slice(body);
}

pub(crate) fn done(out: &mut Vec<u8>, token: u8, status: u16, cur_cmd: u16, rows: u64) {
    out.push(token);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&cur_cmd.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
}

fn env_change(out: &mut Vec<u8>, ty: u8, new: &str, old: &str) {
    let mut body = vec![ty];
    put_b_varchar(&mut body, new);
    put_b_varchar(&mut body, old);
    with_u16_len(out, ENVCHANGE, &body);
}

pub(crate) fn error(out: &mut Vec<u8>, e: &SqlError, server_name: &str) {
    let mut body = Vec::new();
    body.extend_from_slice(&e.number.to_le_bytes());
    body.push(e.state);
    body.push(e.class);
    let message: Vec<u16> = e
        .message
        .encode_utf16()
        .take(usize::from(u16::MAX) / 4)
        .collect();
    body.extend_from_slice(&(message.len() as u16).to_le_bytes()); // bounded by the take
    message
        .iter()
        .for_each(|u| body.extend_from_slice(&u.to_le_bytes()));
    let server = if e.server.is_empty() {
        server_name
    } else {
        &e.server
    };
    put_b_varchar(&mut body, server);
    put_b_varchar(&mut body, &e.procedure);
    body.extend_from_slice(&e.line.to_le_bytes());
    with_u16_len(out, ERROR, &body);
}

/// A successful login's answer: the database, the collation, LOGINACK, the packet size, DONE.
pub(crate) fn login_ack(database: &str, packet_size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    env_change(&mut out, 1, database, "master");
    let mut collation = vec![7, COLLATION.len() as u8];
    collation.extend_from_slice(&COLLATION);
    collation.push(0); // no old collation
    with_u16_len(&mut out, ENVCHANGE, &collation);

    let mut ack = vec![1]; // interface: SQL
    ack.extend_from_slice(&TDS_74.to_be_bytes());
    put_b_varchar(&mut ack, "Microsoft SQL Server");
    ack.extend_from_slice(&[16, 0, 0x10, 0x00]); // 16.0.4096
    with_u16_len(&mut out, LOGINACK, &ack);

    env_change(&mut out, 4, &packet_size.to_string(), "4096");
    done(&mut out, DONE, 0, 0, 0);
    out
}

/// A refused login's answer: its error, then a DONE with the error bit.
pub(crate) fn login_refused(e: &SqlError, server_name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    error(&mut out, e, server_name);
    done(&mut out, DONE, DONE_ERROR, 0, 0);
    out
}

/// A result set's COLMETADATA and ROWs, or why its values do not fit its columns.
fn result_set(out: &mut Vec<u8>, columns: &[Column], rows: &[Vec<Value>]) -> Result<(), String> {
    out.push(COLMETADATA);
    let count = u16::try_from(columns.len()).map_err(|_| "too many columns".to_owned())?;
    out.extend_from_slice(&count.to_le_bytes());
    for column in columns {
        out.extend_from_slice(&0u32.to_le_bytes()); // user type
        out.extend_from_slice(&0x0001u16.to_le_bytes()); // nullable
        column.ty.encode_info(out);
        put_b_varchar(out, &column.name);
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != columns.len() {
            return Err(format!(
                "row {i} has {} values for {} columns",
                row.len(),
                columns.len()
            ));
        }
        out.push(ROW);
        for (column, value) in columns.iter().zip(row) {
            column.ty.encode_value(value, out)?;
        }
    }
    Ok(())
}

/// The response to a request. `rpc` answers as a stored procedure does (DONEINPROC per statement,
/// RETURNSTATUS, a final DONEPROC). Returns the message and whether to close the connection after
/// it ([`Outcome::Close`]: what came before it is sent, without a final DONE).
pub(crate) fn response(outcomes: &[Outcome], rpc: bool, server_name: &str) -> (Vec<u8>, bool) {
    let close = outcomes.iter().position(|o| matches!(o, Outcome::Close));
    let answered = &outcomes[..close.unwrap_or(outcomes.len())];
    let statement_done = if rpc { DONEINPROC } else { DONE };
    let mut out = Vec::new();
    let mut any_error = false;
    for (i, outcome) in answered.iter().enumerate() {
        let last = !rpc && close.is_none() && i + 1 == answered.len();
        let more = if last { 0 } else { DONE_MORE };
        match outcome {
            Outcome::Rows(rs) => {
                let start = out.len();
                match result_set(&mut out, &rs.columns, &rs.rows) {
                    Ok(()) => {
                        let status = more | DONE_COUNT;
                        done(
                            &mut out,
                            statement_done,
                            status,
                            CURCMD_SELECT,
                            rs.rows.len() as u64,
                        );
                    }
                    Err(why) => {
                        out.truncate(start);
                        any_error = true;
                        let msg = format!("The simulated answer cannot be encoded: {why}.");
                        error(&mut out, &SqlError::new(UNENCODABLE, 16, msg), server_name);
                        done(&mut out, statement_done, more | DONE_ERROR, 0, 0);
                    }
                }
            }
            Outcome::Count(n) => done(&mut out, statement_done, more | DONE_COUNT, 0, *n),
            Outcome::Error(e) => {
                any_error = true;
                error(&mut out, e, server_name);
                done(&mut out, statement_done, more | DONE_ERROR, 0, 0);
            }
            Outcome::Close => {}
        }
    }
    if close.is_some() {
        return (out, true);
    }
    if rpc {
        out.push(RETURNSTATUS);
        out.extend_from_slice(&i32::from(any_error).to_le_bytes());
        let status = if any_error { DONE_ERROR } else { 0 };
        done(&mut out, DONEPROC, status, 0, 0);
    } else if answered.is_empty() {
        done(&mut out, DONE, 0, 0, 0);
    }
    (out, false)
}
