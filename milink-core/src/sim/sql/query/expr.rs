//! Expressions: column references through the scopes of a query, literals, `CAST`/`CONVERT`,
//! `CASE`, subqueries, built-in functions and aggregates, with SQL's three-valued logic.

use std::cmp::Ordering;

use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, InTarget, UnaryOperator, Value as AstValue,
};

use crate::sim::tds::{SqlError, SqlType, Value};

use super::errors::{
    ambiguous, invalid_column, subquery_columns, subquery_rows, unbound, unknown_function,
    unsupported,
};
use super::functions;
use super::select::{Ctx, eval_query};
use super::values::{
    as_int, compare, convert, like, parse_type, sort_order, to_text, type_of_value,
};

/// A column of a relation: the table (alias) it belongs to, its name and type.
#[derive(Debug, Clone)]
pub struct ColMeta {
    /// The table's alias (or name), lowercase; `None` for a select list's outputs.
    pub qualifier: Option<String>,
    /// The column's name as declared.
    pub name: String,
    /// Its type.
    pub ty: SqlType,
}

/// One scope of name resolution: the columns of a row (and the rows of its group, in a grouped
/// query), then the enclosing scope (a correlated subquery's outer query).
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The columns in scope.
    pub cols: &'a [ColMeta],
    /// The current row (shorter than `cols` while only types are inferred: NULLs).
    pub row: &'a [Value],
    /// The rows of the current group, in a grouped query.
    pub group: Option<&'a [Vec<Value>]>,
    /// The enclosing scope.
    pub parent: Option<&'a Env<'a>>,
}

impl<'a> Env<'a> {
    /// A scope of `cols` at `row`, inside `parent`.
    pub fn new(cols: &'a [ColMeta], row: &'a [Value], parent: Option<&'a Env<'a>>) -> Self {
        Env {
            cols,
            row,
            group: None,
            parent,
        }
    }
}

fn ident_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The column `parts` names (`name` or `alias.name`), innermost scope first, with its value
/// (NULL while only types are inferred).
pub fn resolve<'e>(env: &'e Env<'e>, parts: &[Ident]) -> Result<(&'e ColMeta, Value), SqlError> {
    let Some((name, qualifier)) = parts.split_last() else {
        return Err(invalid_column(""));
    };
    let qualifier = qualifier.last().map(|q| q.value.to_lowercase());
    let full: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
    let mut scope = Some(env);
    let mut qualifier_seen = false;
    while let Some(e) = scope {
        let mut found = e.cols.iter().enumerate().filter(|(_, c)| {
            let q_ok = match (&qualifier, &c.qualifier) {
                (None, _) => true,
                (Some(q), Some(cq)) => q == cq,
                (Some(_), None) => false,
            };
            q_ok && ident_eq(&c.name, &name.value)
        });
        if let Some((i, col)) = found.next() {
            if found.next().is_some() {
                return Err(ambiguous(&name.value));
            }
            return Ok((col, e.row.get(i).cloned().unwrap_or(Value::Null)));
        }
        if let Some(q) = &qualifier {
            qualifier_seen |= e.cols.iter().any(|c| c.qualifier.as_ref() == Some(q));
        }
        scope = e.parent;
    }
    if qualifier.is_some() && !qualifier_seen {
        Err(unbound(&full.join(".")))
    } else {
        Err(invalid_column(&name.value))
    }
}

/// The rows of the nearest grouped scope.
fn group_of<'e>(env: &'e Env<'e>) -> Option<(&'e Env<'e>, &'e [Vec<Value>])> {
    let mut scope = Some(env);
    while let Some(e) = scope {
        if let Some(g) = e.group {
            return Some((e, g));
        }
        scope = e.parent;
    }
    None
}

/// Whether `expr` contains an aggregate (outside subqueries).
pub fn has_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(f) => {
            functions::is_aggregate(f)
                || function_args(f).is_ok_and(|args| {
                    args.iter()
                        .any(|a| matches!(a, FunctionArgExpr::Expr(e) if has_aggregate(e)))
                })
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::Cast { expr, .. }
        | Expr::Convert { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => has_aggregate(expr),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions
                    .iter()
                    .any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

/// A function's plain arguments.
pub fn function_args(f: &Function) -> Result<Vec<&FunctionArgExpr>, SqlError> {
    match &f.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(e) => Ok(e),
                _ => Err(unsupported(&f.to_string())),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(unsupported(&f.to_string())),
    }
}

fn function_exprs(f: &Function) -> Result<Vec<&Expr>, SqlError> {
    function_args(f)?
        .into_iter()
        .map(|a| match a {
            FunctionArgExpr::Expr(e) => Ok(e),
            _ => Err(unsupported(&f.to_string())),
        })
        .collect()
}

fn literal(v: &AstValue, raw: &Expr) -> Result<Value, SqlError> {
    Ok(match v {
        AstValue::Null => Value::Null,
        AstValue::Number(n, _) => {
            if let Ok(i) = n.parse::<i32>() {
                Value::Int(i)
            } else if let Ok(i) = n.parse::<i64>() {
                Value::BigInt(i)
            } else {
                convert(
                    &Value::String(n.clone()),
                    &SqlType::Numeric {
                        precision: 38,
                        scale: u8::try_from(n.split_once('.').map_or(0, |(_, f)| f.len()))
                            .unwrap_or(0),
                    },
                )?
            }
        }
        AstValue::SingleQuotedString(s) | AstValue::NationalStringLiteral(s) => {
            Value::String(s.clone())
        }
        AstValue::HexStringLiteral(h) => {
            let digits: Vec<u8> = h
                .chars()
                .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| super::errors::syntax_error(h))?;
            let padded: Vec<u8> = if digits.len() % 2 == 1 {
                std::iter::once(0).chain(digits).collect()
            } else {
                digits
            };
            Value::Binary(
                padded
                    .chunks(2)
                    .map(|p| p.iter().fold(0u8, |acc, d| acc * 16 + d))
                    .collect(),
            )
        }
        AstValue::Boolean(b) => Value::Bit(*b),
        _ => return Err(unsupported(&raw.to_string())),
    })
}

fn literal_type(v: &AstValue) -> SqlType {
    match v {
        AstValue::Null => SqlType::Int,
        AstValue::SingleQuotedString(s) => {
            SqlType::VarChar(Some(u16::try_from(s.len().clamp(1, 8000)).unwrap_or(8000)))
        }
        AstValue::NationalStringLiteral(s) => SqlType::NVarChar(Some(
            u16::try_from(s.chars().count().clamp(1, 4000)).unwrap_or(4000),
        )),
        other => literal(other, &Expr::value(other.clone()))
            .map(|v| type_of_value(&v))
            .unwrap_or(SqlType::NVarChar(Some(4000))),
    }
}

/// The type of `expr`'s values in `env`, for a result set's column: the column's, the
/// `CAST`/`CONVERT` target's, the first `THEN`'s, the first argument's of `COALESCE`, `MIN` and
/// `MAX`; `int` for `COUNT` and the `NULL` literal; `nvarchar(4000)` when nothing better is
/// known.
pub fn expr_type(ctx: &Ctx<'_>, env: &Env<'_>, expr: &Expr) -> SqlType {
    let fallback = SqlType::NVarChar(Some(4000));
    match expr {
        Expr::Identifier(id) if id.value.starts_with("@@") => {
            functions::global_type(&id.value).unwrap_or(fallback)
        }
        Expr::Identifier(id) => resolve(env, std::slice::from_ref(id))
            .map(|(c, _)| c.ty)
            .unwrap_or(fallback),
        Expr::CompoundIdentifier(parts) => {
            resolve(env, parts).map(|(c, _)| c.ty).unwrap_or(fallback)
        }
        Expr::Value(v) => literal_type(&v.value),
        Expr::Cast { data_type, .. } => parse_type(&data_type.to_string()).unwrap_or(fallback),
        Expr::Convert {
            data_type: Some(t), ..
        } => parse_type(&t.to_string()).unwrap_or(fallback),
        Expr::Nested(e) | Expr::UnaryOp { expr: e, .. } => expr_type(ctx, env, e),
        Expr::Case {
            conditions,
            else_result,
            ..
        } => conditions
            .iter()
            .map(|c| &c.result)
            .chain(else_result.as_deref())
            .find(|e| !matches!(e, Expr::Value(v) if v.value == AstValue::Null))
            .map_or(SqlType::Int, |e| expr_type(ctx, env, e)),
        Expr::Function(f) => {
            let args = function_exprs(f).unwrap_or_default();
            functions::result_type(f, &|i| args.get(i).map(|e| expr_type(ctx, env, e)))
                .unwrap_or(fallback)
        }
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo => {
                let (l, r) = (expr_type(ctx, env, left), expr_type(ctx, env, right));
                if l == SqlType::BigInt || r == SqlType::BigInt {
                    SqlType::BigInt
                } else if matches!(l, SqlType::Numeric { .. }) {
                    l
                } else if matches!(r, SqlType::Numeric { .. }) {
                    r
                } else {
                    l
                }
            }
            _ => SqlType::Bit,
        },
        Expr::Subquery(q) => eval_query(ctx, q, Some(env))
            .ok()
            .and_then(|r| r.cols.first().map(|c| c.ty))
            .unwrap_or(fallback),
        _ => fallback,
    }
}

/// Three-valued truth: `Some(true)`, `Some(false)`, or `None` (UNKNOWN).
pub type Truth = Option<bool>;

fn not(t: Truth) -> Truth {
    t.map(|b| !b)
}

/// Evaluates a search condition.
pub fn eval_pred(ctx: &Ctx<'_>, env: &Env<'_>, expr: &Expr) -> Result<Truth, SqlError> {
    match expr {
        Expr::Nested(e) => eval_pred(ctx, env, e),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Ok(not(eval_pred(ctx, env, expr)?)),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => {
                let l = eval_pred(ctx, env, left)?;
                if l == Some(false) {
                    return Ok(l);
                }
                let r = eval_pred(ctx, env, right)?;
                Ok(match (l, r) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                })
            }
            BinaryOperator::Or => {
                let l = eval_pred(ctx, env, left)?;
                if l == Some(true) {
                    return Ok(l);
                }
                let r = eval_pred(ctx, env, right)?;
                Ok(match (l, r) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                })
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                let l = eval(ctx, env, left)?;
                let r = eval(ctx, env, right)?;
                Ok(compare(&l, &r)?.map(|o| match op {
                    BinaryOperator::Eq => o == Ordering::Equal,
                    BinaryOperator::NotEq => o != Ordering::Equal,
                    BinaryOperator::Lt => o == Ordering::Less,
                    BinaryOperator::LtEq => o != Ordering::Greater,
                    BinaryOperator::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }))
            }
            _ => Err(super::errors::syntax_error(&op.to_string())),
        },
        Expr::IsNull(e) => Ok(Some(matches!(eval(ctx, env, e)?, Value::Null))),
        Expr::IsNotNull(e) => Ok(Some(!matches!(eval(ctx, env, e)?, Value::Null))),
        Expr::Exists { subquery, negated } => {
            let rel = eval_query(ctx, subquery, Some(env))?;
            Ok(Some(rel.rows.is_empty() == *negated))
        }
        Expr::In {
            expr,
            target,
            negated,
            ..
        } => {
            let v = eval(ctx, env, expr)?;
            let candidates: Vec<Value> = match target {
                InTarget::List(list) => list
                    .iter()
                    .map(|e| eval(ctx, env, e))
                    .collect::<Result<_, _>>()?,
                InTarget::Subquery(q) => {
                    let rel = eval_query(ctx, q, Some(env))?;
                    if rel.cols.len() != 1 {
                        return Err(subquery_columns());
                    }
                    rel.rows
                        .into_iter()
                        .filter_map(|r| r.into_iter().next())
                        .collect()
                }
                _ => return Err(unsupported(&expr.to_string())),
            };
            // x IN (a, b) is x = a OR x = b: TRUE if one matches, UNKNOWN if none does and a
            // comparison was UNKNOWN.
            let mut result = Some(false);
            for c in &candidates {
                match compare(&v, c)? {
                    Some(Ordering::Equal) => {
                        result = Some(true);
                        break;
                    }
                    None => result = None,
                    Some(_) => {}
                }
            }
            Ok(if *negated { not(result) } else { result })
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let v = eval(ctx, env, expr)?;
            let lo = compare(&v, &eval(ctx, env, low)?)?.map(|o| o != Ordering::Less);
            let hi = compare(&v, &eval(ctx, env, high)?)?.map(|o| o != Ordering::Greater);
            let t = match (lo, hi) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            Ok(if *negated { not(t) } else { t })
        }
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => {
            let v = eval(ctx, env, expr)?;
            let p = eval(ctx, env, pattern)?;
            let t = match (to_text(&v), to_text(&p)) {
                (Some(v), Some(p)) => Some(like(&v, &p)),
                _ => None,
            };
            Ok(if *negated { not(t) } else { t })
        }
        // A value where a condition is expected (`WHERE 1`) is not T-SQL.
        other => Err(super::errors::syntax_error(&other.to_string())),
    }
}

fn truth_value(t: Truth) -> Value {
    t.map_or(Value::Null, Value::Bit)
}

fn arithmetic(op: &BinaryOperator, l: &Value, r: &Value) -> Result<Value, SqlError> {
    if matches!(l, Value::Null) || matches!(r, Value::Null) {
        return Ok(Value::Null);
    }
    let (Some(a), Some(b)) = (as_int(l), as_int(r)) else {
        return Err(unsupported(&format!("{op} on non-integer values")));
    };
    let v = match op {
        BinaryOperator::Plus => a.checked_add(b),
        BinaryOperator::Minus => a.checked_sub(b),
        BinaryOperator::Multiply => a.checked_mul(b),
        BinaryOperator::Divide | BinaryOperator::Modulo if b == 0 => {
            return Err(SqlError::new(8134, 16, "Divide by zero error encountered."));
        }
        // Integer division truncates toward zero, as in SQL Server.
        BinaryOperator::Divide => a.checked_div(b),
        _ => a.checked_rem(b),
    }
    .ok_or_else(|| SqlError::new(8115, 16, "Arithmetic overflow error."))?;
    let ty = if matches!(l, Value::BigInt(_)) || matches!(r, Value::BigInt(_)) {
        SqlType::BigInt
    } else {
        SqlType::Int
    };
    convert(&Value::BigInt(i64::try_from(v).unwrap_or(i64::MAX)), &ty)
}

/// Evaluates an expression to a value.
pub fn eval(ctx: &Ctx<'_>, env: &Env<'_>, expr: &Expr) -> Result<Value, SqlError> {
    match expr {
        Expr::Identifier(id) if id.value.starts_with("@@") => {
            functions::global(ctx, &id.value).ok_or_else(|| invalid_column(&id.value))
        }
        Expr::Identifier(id) => Ok(resolve(env, std::slice::from_ref(id))?.1),
        Expr::CompoundIdentifier(parts) => Ok(resolve(env, parts)?.1),
        Expr::Value(v) => literal(&v.value, expr),
        Expr::Nested(e) => eval(ctx, env, e),
        Expr::Cast {
            expr: inner,
            data_type,
            format: None,
            ..
        } => convert(
            &eval(ctx, env, inner)?,
            &parse_type(&data_type.to_string())?,
        ),
        Expr::Convert {
            is_try: false,
            expr: inner,
            data_type: Some(t),
            charset: None,
            styles,
            ..
        } if styles.is_empty() => convert(&eval(ctx, env, inner)?, &parse_type(&t.to_string())?),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => arithmetic(
            &BinaryOperator::Minus,
            &Value::Int(0),
            &eval(ctx, env, inner)?,
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr: inner,
        } => eval(ctx, env, inner),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo => {
                let l = eval(ctx, env, left)?;
                let r = eval(ctx, env, right)?;
                if let (BinaryOperator::Plus, Value::String(a), Value::String(b)) = (op, &l, &r) {
                    return Ok(Value::String(format!("{a}{b}")));
                }
                arithmetic(op, &l, &r)
            }
            _ => Ok(truth_value(eval_pred(ctx, env, expr)?)),
        },
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let subject = operand.as_deref().map(|o| eval(ctx, env, o)).transpose()?;
            for c in conditions {
                let hit = match &subject {
                    Some(s) => compare(s, &eval(ctx, env, &c.condition)?)? == Some(Ordering::Equal),
                    None => eval_pred(ctx, env, &c.condition)? == Some(true),
                };
                if hit {
                    return eval(ctx, env, &c.result);
                }
            }
            else_result
                .as_deref()
                .map_or(Ok(Value::Null), |e| eval(ctx, env, e))
        }
        Expr::Subquery(q) => {
            let rel = eval_query(ctx, q, Some(env))?;
            if rel.cols.len() != 1 {
                return Err(subquery_columns());
            }
            match rel.rows.as_slice() {
                [] => Ok(Value::Null),
                [row] => Ok(row.first().cloned().unwrap_or(Value::Null)),
                _ => Err(subquery_rows()),
            }
        }
        Expr::Function(f) if functions::is_aggregate(f) => aggregate(ctx, env, f),
        Expr::Function(f)
            if matches!(functions::name_of(f).as_str(), "DATEDIFF" | "DATEDIFF_BIG") =>
        {
            datediff(ctx, env, f)
        }
        Expr::Function(f) => {
            let name = functions::name_of(f);
            let args: Vec<Value> = function_exprs(f)?
                .into_iter()
                .map(|e| eval(ctx, env, e))
                .collect::<Result<_, _>>()?;
            functions::call(ctx, &name, &args)
        }
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::Exists { .. }
        | Expr::In { .. }
        | Expr::Between { .. }
        | Expr::UnaryOp {
            op: UnaryOperator::Not,
            ..
        } => Ok(truth_value(eval_pred(ctx, env, expr)?)),
        other => Err(unsupported(&other.to_string())),
    }
}

/// `DATEDIFF[_BIG](part, start, end)`: the whole units of `part` from `start` to `end` (SQL
/// Server counts boundaries crossed; for the millisecond and second parts the simulator uses,
/// that is the truncated difference).
fn datediff(ctx: &Ctx<'_>, env: &Env<'_>, f: &Function) -> Result<Value, SqlError> {
    let name = functions::name_of(f);
    let exprs = function_exprs(f)?;
    let [Expr::Identifier(part), start, end] = exprs.as_slice() else {
        return Err(SqlError::new(
            174,
            15,
            format!("The {name} function requires 3 argument(s)."),
        ));
    };
    let unit: i128 = match part.value.to_ascii_lowercase().as_str() {
        "millisecond" | "ms" => 1,
        "second" | "ss" | "s" => 1000,
        "minute" | "mi" | "n" => 60_000,
        "hour" | "hh" => 3_600_000,
        "day" | "dd" | "d" => 86_400_000,
        other => return Err(unsupported(&format!("{name}({other}, …)"))),
    };
    let at = |e: &Expr| -> Result<Option<i128>, SqlError> {
        match convert(&eval(ctx, env, e)?, &SqlType::DateTime)? {
            Value::DateTime(t) => Ok(Some(i128::from(t.as_millis()))),
            _ => Ok(None),
        }
    };
    let (Some(a), Some(b)) = (at(start)?, at(end)?) else {
        return Ok(Value::Null);
    };
    let diff = (b - a) / unit;
    let ty = if name == "DATEDIFF" {
        SqlType::Int
    } else {
        SqlType::BigInt
    };
    convert(&Value::BigInt(i64::try_from(diff).unwrap_or(i64::MAX)), &ty)
}

/// `COUNT(*)`, `COUNT([DISTINCT] x)`, `MIN(x)`, `MAX(x)`, `SUM(x)` over the nearest group.
fn aggregate(ctx: &Ctx<'_>, env: &Env<'_>, f: &Function) -> Result<Value, SqlError> {
    let name = functions::name_of(f);
    let Some((genv, rows)) = group_of(env) else {
        return Err(SqlError::new(
            147,
            15,
            format!("An aggregate ({name}) may not appear outside a SELECT list or ORDER BY."),
        ));
    };
    let distinct = matches!(
        &f.args,
        FunctionArguments::List(l) if l.duplicate_treatment == Some(DuplicateTreatment::Distinct)
    );
    let args = function_args(f)?;
    if name == "COUNT" && matches!(args.as_slice(), [FunctionArgExpr::Wildcard]) {
        return Ok(Value::Int(i32::try_from(rows.len()).unwrap_or(i32::MAX)));
    }
    let [FunctionArgExpr::Expr(arg)] = args.as_slice() else {
        return Err(unsupported(&f.to_string()));
    };
    let mut values = Vec::new();
    for r in rows {
        let row_env = Env::new(genv.cols, r, genv.parent);
        let v = eval(ctx, &row_env, arg)?;
        if !matches!(v, Value::Null) {
            values.push(v);
        }
    }
    if distinct {
        values.sort_by(sort_order);
        values.dedup_by(|a, b| sort_order(a, b) == Ordering::Equal);
    }
    match name.as_str() {
        "COUNT" => Ok(Value::Int(i32::try_from(values.len()).unwrap_or(i32::MAX))),
        "MIN" => Ok(values.into_iter().min_by(sort_order).unwrap_or(Value::Null)),
        "MAX" => Ok(values.into_iter().max_by(sort_order).unwrap_or(Value::Null)),
        "SUM" => {
            let mut total: i128 = 0;
            let mut big = false;
            for v in &values {
                big |= matches!(v, Value::BigInt(_));
                total += as_int(v).ok_or_else(|| unsupported("SUM of non-integers"))?;
            }
            if values.is_empty() {
                return Ok(Value::Null);
            }
            convert(
                &Value::BigInt(i64::try_from(total).unwrap_or(i64::MAX)),
                &if big { SqlType::BigInt } else { SqlType::Int },
            )
        }
        _ => Err(unknown_function(&name)),
    }
}
