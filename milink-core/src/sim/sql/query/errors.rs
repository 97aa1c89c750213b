//! The errors the evaluator answers, with SQL Server's numbers and texts.

use crate::sim::tds::{SqlError, SqlType, Value};

use super::values::{to_text, type_name, value_type_name};

/// Error 102, class 15: what SQL Server answers to text it cannot parse.
pub fn syntax_error(near: &str) -> SqlError {
    let near: String = near.chars().take(40).collect();
    SqlError::new(
        super::SYNTAX_ERROR,
        15,
        format!("Incorrect syntax near '{near}'."),
    )
}

/// The token a `sqlparser` error message names (`…, found: X at Line: …`), for error 102.
pub fn near_of_parse_error(message: &str) -> String {
    let found = message
        .split_once("found: ")
        .map_or(message, |(_, rest)| rest);
    let token = found.split(" at Line").next().unwrap_or(found).trim();
    if token.is_empty() {
        "end of input".to_owned()
    } else {
        token.to_owned()
    }
}

/// Error 40517, class 16: a construct `sqlparser` reads but the simulator does not evaluate.
pub fn unsupported(what: &str) -> SqlError {
    let what: String = what.chars().take(60).collect();
    SqlError::new(
        super::UNSUPPORTED,
        16,
        format!(
            "Keyword or statement option '{what}' is not supported in this version of SQL Server."
        ),
    )
}

/// Error 208: an unknown table or view.
pub fn invalid_object(name: &str) -> SqlError {
    SqlError::new(208, 16, format!("Invalid object name '{name}'."))
}

/// Error 207: an unknown column.
pub fn invalid_column(name: &str) -> SqlError {
    SqlError::new(207, 16, format!("Invalid column name '{name}'."))
}

/// Error 4104: a qualified column whose qualifier names no table of the query.
pub fn unbound(name: &str) -> SqlError {
    SqlError::new(
        4104,
        16,
        format!("The multi-part identifier \"{name}\" could not be bound."),
    )
}

/// Error 209: a column name that more than one table of the query has.
pub fn ambiguous(name: &str) -> SqlError {
    SqlError::new(209, 16, format!("Ambiguous column name '{name}'."))
}

/// Error 195: an unknown function.
pub fn unknown_function(name: &str) -> SqlError {
    SqlError::new(
        195,
        15,
        format!("'{name}' is not a recognized built-in function name."),
    )
}

/// Error 245: a value that does not convert to the type.
pub fn conversion_failed(v: &Value, ty: &SqlType) -> SqlError {
    SqlError::new(
        245,
        16,
        format!(
            "Conversion failed when converting the {} value '{}' to data type {}.",
            value_type_name(v),
            to_text(v).unwrap_or_default(),
            type_name(ty)
        ),
    )
}

/// Error 512: a scalar subquery that returned more than one row.
pub fn subquery_rows() -> SqlError {
    SqlError::new(
        512,
        16,
        "Subquery returned more than 1 value. This is not permitted when the subquery follows \
         =, !=, <, <= , >, >= or when the subquery is used as an expression.",
    )
}

/// Error 116: a subquery with more than one column where one value is expected.
pub fn subquery_columns() -> SqlError {
    SqlError::new(
        116,
        16,
        "Only one expression can be specified in the select list when the subquery is not \
         introduced with EXISTS.",
    )
}
