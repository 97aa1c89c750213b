//! Built-in functions and `@@` globals: `COALESCE`, `ISNULL`, `SERVERPROPERTY`, `CERT_ID`,
//! `CERTENCODED`, `DB_NAME`, `DB_ID`, `IS_SRVROLEMEMBER`, `CONNECTIONPROPERTY`, `@@SPID`,
//! `@@SERVERNAME`, `@@VERSION`; and which
//! functions are aggregates (`COUNT`, `MIN`, `MAX`, `SUM`).

use sqlparser::ast::Function;

use crate::sim::tds::{SqlError, SqlType, Value};

use super::super::catalog;
use super::errors::{syntax_error, unknown_function};
use super::select::Ctx;
use super::values::{as_int, to_text};

/// A function's name, uppercase (the last part of a qualified name).
pub fn name_of(f: &Function) -> String {
    f.name
        .0
        .last()
        .map(|p| p.to_string().trim_matches(['[', ']']).to_ascii_uppercase())
        .unwrap_or_default()
}

/// Whether `f` is an aggregate.
pub fn is_aggregate(f: &Function) -> bool {
    matches!(name_of(f).as_str(), "COUNT" | "MIN" | "MAX" | "SUM")
}

/// The value of an `@@` global.
pub fn global(ctx: &Ctx<'_>, name: &str) -> Option<Value> {
    Some(match name.to_ascii_uppercase().as_str() {
        "@@SPID" => Value::SmallInt(i16::try_from(ctx.session.spid).unwrap_or(i16::MAX)),
        "@@SERVERNAME" => Value::String(catalog::server_name(ctx.world, ctx.side)),
        "@@VERSION" => Value::String(catalog::version_text(ctx.world, ctx.side)),
        "@@TRANCOUNT" => Value::Int(0),
        _ => return None,
    })
}

/// The type of an `@@` global.
pub fn global_type(name: &str) -> Option<SqlType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "@@SPID" => SqlType::SmallInt,
        "@@SERVERNAME" => SqlType::NVarChar(Some(128)),
        "@@VERSION" => SqlType::NVarChar(Some(300)),
        "@@TRANCOUNT" => SqlType::Int,
        _ => return None,
    })
}

/// The type of a call of `f`, given its arguments' types.
pub fn result_type(f: &Function, arg: &dyn Fn(usize) -> Option<SqlType>) -> Option<SqlType> {
    Some(match name_of(f).as_str() {
        "COUNT" => SqlType::Int,
        "MIN" | "MAX" | "COALESCE" | "ISNULL" => arg(0)?,
        "SUM" => match arg(0)? {
            SqlType::BigInt => SqlType::BigInt,
            _ => SqlType::Int,
        },
        // sql_variant on SQL Server; the simulator has no such type.
        "SERVERPROPERTY" => SqlType::NVarChar(Some(128)),
        "CERT_ID" | "DB_ID" | "DATEDIFF" => SqlType::Int,
        "DATEDIFF_BIG" => SqlType::BigInt,
        "CERTENCODED" => SqlType::VarBinary(None),
        "DB_NAME" => SqlType::NVarChar(Some(128)),
        "IS_SRVROLEMEMBER" => SqlType::Int,
        // sql_variant on SQL Server.
        "CONNECTIONPROPERTY" => SqlType::NVarChar(Some(128)),
        _ => return None,
    })
}

fn arity(name: &str, n: usize) -> SqlError {
    SqlError::new(
        174,
        15,
        format!("The {name} function requires {n} argument(s)."),
    )
}

/// The one argument of a one-argument function.
fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, SqlError> {
    match args {
        [a] => Ok(a),
        _ => Err(arity(name, 1)),
    }
}

/// Calls the scalar function `name` (uppercase) on `args`.
pub fn call(ctx: &Ctx<'_>, name: &str, args: &[Value]) -> Result<Value, SqlError> {
    match name {
        "COALESCE" => {
            if args.len() < 2 {
                return Err(syntax_error(")"));
            }
            Ok(args
                .iter()
                .find(|v| !matches!(v, Value::Null))
                .cloned()
                .unwrap_or(Value::Null))
        }
        "ISNULL" => match args {
            [Value::Null, b] => Ok(b.clone()),
            [a, _] => Ok(a.clone()),
            _ => Err(arity(name, 2)),
        },
        "SERVERPROPERTY" => Ok(match to_text(one(name, args)?) {
            Some(p) => catalog::server_property(ctx.world, ctx.side, &p),
            None => Value::Null,
        }),
        "CERT_ID" => Ok(to_text(one(name, args)?)
            .and_then(|n| catalog::certificate_id(ctx.world, ctx.side, &n))
            .map_or(Value::Null, Value::Int)),
        "CERTENCODED" => Ok(as_int(one(name, args)?)
            .and_then(|id| i32::try_from(id).ok())
            .and_then(|id| catalog::certificate_der(ctx.world, ctx.side, id))
            .map_or(Value::Null, Value::Binary)),
        "DB_NAME" => match args {
            [] => Ok(Value::String(ctx.session.database.clone())),
            [id] => Ok(as_int(id)
                .and_then(|id| i32::try_from(id).ok())
                .and_then(|id| catalog::database_name(ctx.world, ctx.side, id))
                .map_or(Value::Null, Value::String)),
            _ => Err(arity(name, 1)),
        },
        "DB_ID" => match args {
            [] => Ok(
                catalog::database_id(ctx.world, ctx.side, &ctx.session.database)
                    .map_or(Value::Null, Value::Int),
            ),
            [n] => Ok(to_text(n)
                .and_then(|n| catalog::database_id(ctx.world, ctx.side, &n))
                .map_or(Value::Null, Value::Int)),
            _ => Err(arity(name, 1)),
        },
        // The simulated servers' one login is sysadmin.
        "IS_SRVROLEMEMBER" => match args {
            [role] | [role, _] => Ok(match to_text(role) {
                Some(r) if r.eq_ignore_ascii_case("sysadmin") => Value::Int(1),
                Some(_) => Value::Int(0),
                None => Value::Null,
            }),
            _ => Err(arity(name, 1)),
        },
        // SQL Server's own address on the connection (`local_net_address`) is the one the
        // world's facts record for it, if any; NULL otherwise, as SQL Server answers for a
        // connection that is not over TCP. Other properties are NULL.
        "CONNECTIONPROPERTY" => {
            let property = to_text(one(name, args)?);
            let local = matches!(ctx.side, crate::lifecycle::Side::SqlServer)
                && property.is_some_and(|p| p.eq_ignore_ascii_case("local_net_address"));
            Ok(if local {
                ctx.world
                    .instance_facts()
                    .local_address
                    .map_or(Value::Null, Value::String)
            } else {
                Value::Null
            })
        }
        other => Err(unknown_function(other)),
    }
}
