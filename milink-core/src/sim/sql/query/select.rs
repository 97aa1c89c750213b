//! Queries: `WITH`, `SELECT` (FROM with joins and `APPLY`, WHERE, GROUP BY, the select list,
//! DISTINCT, ORDER BY, TOP), `UNION [ALL]` and `VALUES`, evaluated over relations in memory.

use std::cmp::Ordering;
use std::rc::Rc;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, JoinConstraint, JoinOperator, OrderByExpr, OrderByKind,
    OrderBySort, Query, Select, SelectItem, SetExpr, SetOperator, SetQuantifier, TableAlias,
    TableFactor, TableWithJoins, TopQuantity,
};

use crate::lifecycle::Side;
use crate::sim::World;
use crate::sim::tds::{SessionInfo, SqlError, Value};

use super::super::catalog;
use super::errors::{invalid_object, syntax_error, unsupported};
use super::expr::{ColMeta, Env, eval, eval_pred, expr_type, has_aggregate};
use super::values::{as_int, rows_order, sort_order, type_of_value};

/// A relation: columns and rows.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    /// The columns.
    pub cols: Vec<ColMeta>,
    /// The rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// What a statement is evaluated against: the world as one side sees it, the session, and the
/// common table expressions in scope.
#[derive(Clone)]
pub struct Ctx<'w> {
    /// The world.
    pub world: &'w World,
    /// Whose catalog.
    pub side: Side,
    /// The caller's session.
    pub session: &'w SessionInfo,
    /// CTEs in scope, lowercase name first.
    pub ctes: Vec<(String, Rc<Relation>)>,
}

fn requalified(rel: &Relation, qualifier: &str) -> Relation {
    Relation {
        cols: rel
            .cols
            .iter()
            .map(|c| ColMeta {
                qualifier: Some(qualifier.to_lowercase()),
                ..c.clone()
            })
            .collect(),
        rows: rel.rows.clone(),
    }
}

/// Renames a relation's columns after an alias's column list (`AS d (a, b)`).
fn renamed(mut rel: Relation, alias: &TableAlias) -> Result<Relation, SqlError> {
    if !alias.columns.is_empty() {
        if alias.columns.len() != rel.cols.len() {
            return Err(SqlError::new(
                8158,
                16,
                format!(
                    "'{}' has more columns than were specified in the column list.",
                    alias.name.value
                ),
            ));
        }
        for (c, a) in rel.cols.iter_mut().zip(&alias.columns) {
            c.name = a.name.value.clone();
        }
    }
    Ok(requalified(&rel, &alias.name.value))
}

/// Evaluates a query (`WITH … SELECT … ORDER BY …`) inside `outer` (a correlated subquery's
/// enclosing row).
pub fn eval_query(ctx: &Ctx<'_>, q: &Query, outer: Option<&Env<'_>>) -> Result<Relation, SqlError> {
    if q.limit_clause.is_some()
        || q.fetch.is_some()
        || q.for_clause.is_some()
        || !q.locks.is_empty()
    {
        return Err(unsupported(&q.to_string()));
    }
    let mut scoped = ctx.clone();
    if let Some(with) = &q.with {
        if with.recursive {
            return Err(unsupported("WITH RECURSIVE"));
        }
        for cte in &with.cte_tables {
            let rel = eval_query(&scoped, &cte.query, None)?;
            let rel = renamed(rel, &cte.alias)?;
            scoped
                .ctes
                .insert(0, (cte.alias.name.value.to_lowercase(), Rc::new(rel)));
        }
    }
    let order: &[OrderByExpr] = match q.order_by.as_ref().map(|o| &o.kind) {
        None => &[],
        Some(OrderByKind::Expressions(list)) => list,
        Some(OrderByKind::All(_)) => return Err(syntax_error("ALL")),
    };
    match q.body.as_ref() {
        SetExpr::Select(s) => eval_select(&scoped, s, order, outer),
        other => {
            let mut rel = eval_set(&scoped, other, outer)?;
            if !order.is_empty() {
                let mut keyed = Vec::with_capacity(rel.rows.len());
                for row in std::mem::take(&mut rel.rows) {
                    let env = Env::new(&rel.cols, &row, outer);
                    let keys = order
                        .iter()
                        .map(|o| eval(&scoped, &env, &o.expr))
                        .collect::<Result<Vec<_>, _>>()?;
                    keyed.push((keys, row));
                }
                sort_keyed(&mut keyed, order);
                rel.rows = keyed.into_iter().map(|(_, r)| r).collect();
            }
            Ok(rel)
        }
    }
}

fn eval_set(ctx: &Ctx<'_>, body: &SetExpr, outer: Option<&Env<'_>>) -> Result<Relation, SqlError> {
    match body {
        SetExpr::Select(s) => eval_select(ctx, s, &[], outer),
        SetExpr::Query(q) => eval_query(ctx, q, outer),
        SetExpr::SetOperation {
            left,
            op: SetOperator::Union,
            set_quantifier,
            right,
        } => {
            let mut l = eval_set(ctx, left, outer)?;
            let r = eval_set(ctx, right, outer)?;
            if l.cols.len() != r.cols.len() {
                return Err(SqlError::new(
                    205,
                    16,
                    "All queries combined using a UNION, INTERSECT or EXCEPT operator must have \
                     an equal number of expressions in their target lists.",
                ));
            }
            l.rows.extend(r.rows);
            match set_quantifier {
                SetQuantifier::All => {}
                SetQuantifier::None | SetQuantifier::Distinct => l.rows = distinct(l.rows),
                other => return Err(unsupported(&format!("UNION {other}"))),
            }
            Ok(l)
        }
        SetExpr::Values(values) => {
            let empty = Env::new(&[], &[], outer);
            let mut rows = Vec::new();
            for r in &values.rows {
                rows.push(
                    r.content
                        .iter()
                        .map(|e| eval(ctx, &empty, e))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            let width = rows.first().map_or(0, Vec::len);
            if rows.iter().any(|r| r.len() != width) {
                return Err(SqlError::new(
                    10709,
                    16,
                    "The number of columns for each row in a table value constructor must be the \
                     same.",
                ));
            }
            let cols = (0..width)
                .map(|i| ColMeta {
                    qualifier: None,
                    name: format!("column{}", i + 1),
                    ty: rows
                        .iter()
                        .map(|r| &r[i])
                        .find(|v| !matches!(v, Value::Null))
                        .map_or(crate::sim::tds::SqlType::Int, type_of_value),
                })
                .collect();
            Ok(Relation { cols, rows })
        }
        other => Err(unsupported(&other.to_string())),
    }
}

/// Rows without duplicates (NULLs equal, strings case-insensitively), first occurrence kept.
fn distinct(rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::with_capacity(rows.len());
    for r in rows {
        if !out.iter().any(|o| rows_order(o, &r) == Ordering::Equal) {
            out.push(r);
        }
    }
    out
}

/// Stable sort by keys, each ascending or descending; NULL is the lowest value (first
/// ascending, last descending), as in SQL Server.
fn sort_keyed<T>(keyed: &mut [(Vec<Value>, T)], order: &[OrderByExpr]) {
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), o) in a.iter().zip(b).zip(order) {
            let c = sort_order(x, y);
            let c = if matches!(o.options.sort, Some(OrderBySort::Desc)) {
                c.reverse()
            } else {
                c
            };
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    });
}

/// The output name of a select item: its alias, or the column name of a bare column reference.
fn output_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(id) => id.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn eval_select(
    ctx: &Ctx<'_>,
    s: &Select,
    order: &[OrderByExpr],
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    if s.into.is_some()
        || s.having.is_some()
        || s.prewhere.is_some()
        || s.qualify.is_some()
        || !s.lateral_views.is_empty()
        || !s.sort_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
    {
        return Err(unsupported(&s.to_string()));
    }
    let source = eval_from(ctx, &s.from, outer)?;
    let mut rows = Vec::new();
    for row in source.rows {
        let keep = match &s.selection {
            None => true,
            Some(w) => eval_pred(ctx, &Env::new(&source.cols, &row, outer), w)? == Some(true),
        };
        if keep {
            rows.push(row);
        }
    }
    let cols = source.cols;

    // The select list, `*` expanded.
    let mut items: Vec<(String, Expr)> = Vec::new();
    for item in &s.projection {
        match item {
            SelectItem::UnnamedExpr(e) => items.push((output_name(e), e.clone())),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((alias.value.clone(), expr.clone()))
            }
            SelectItem::Wildcard(_) => {
                for c in &cols {
                    items.push((c.name.clone(), column_expr(c)));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let q = kind.to_string().to_lowercase();
                let q = q.rsplit('.').next().unwrap_or_default().to_owned();
                let mut any = false;
                for c in cols
                    .iter()
                    .filter(|c| c.qualifier.as_deref() == Some(q.as_str()))
                {
                    any = true;
                    items.push((c.name.clone(), column_expr(c)));
                }
                if !any {
                    return Err(super::errors::unbound(&q));
                }
            }
            other => return Err(unsupported(&other.to_string())),
        }
    }

    let group_exprs: &[Expr] = match &s.group_by {
        GroupByExpr::Expressions(list, modifiers) if modifiers.is_empty() => list,
        other => return Err(unsupported(&other.to_string())),
    };
    let grouped = !group_exprs.is_empty()
        || items.iter().any(|(_, e)| has_aggregate(e))
        || order.iter().any(|o| has_aggregate(&o.expr));

    // The units a result row comes from: each row, or each group (with a representative row).
    let nulls: Vec<Value> = vec![Value::Null; cols.len()];
    let mut units: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    if grouped {
        let mut groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
        for row in rows {
            let env = Env::new(&cols, &row, outer);
            let key = group_exprs
                .iter()
                .map(|e| eval(ctx, &env, e))
                .collect::<Result<Vec<_>, _>>()?;
            match groups
                .iter_mut()
                .find(|(k, _)| rows_order(k, &key) == Ordering::Equal)
            {
                Some((_, members)) => members.push(row),
                None => groups.push((key, vec![row])),
            }
        }
        if groups.is_empty() && group_exprs.is_empty() {
            units.push((nulls.clone(), Vec::new()));
        }
        for (_, members) in groups {
            let rep = members.first().cloned().unwrap_or_else(|| nulls.clone());
            units.push((rep, members));
        }
    } else {
        units = rows.into_iter().map(|r| (r, Vec::new())).collect();
    }

    let out_cols: Vec<ColMeta> = {
        let env = Env {
            cols: &cols,
            row: &[],
            group: Some(&[]),
            parent: outer,
        };
        items
            .iter()
            .map(|(name, e)| ColMeta {
                qualifier: None,
                name: name.clone(),
                ty: expr_type(ctx, &env, e),
            })
            .collect()
    };

    let mut keyed: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(units.len());
    for (rep, members) in &units {
        let env = Env {
            cols: &cols,
            row: rep,
            group: grouped.then_some(members.as_slice()),
            parent: outer,
        };
        let out = items
            .iter()
            .map(|(_, e)| eval(ctx, &env, e))
            .collect::<Result<Vec<_>, _>>()?;
        let order_env = Env::new(&out_cols, &out, Some(&env));
        let keys = order
            .iter()
            .map(|o| eval(ctx, &order_env, &o.expr))
            .collect::<Result<Vec<_>, _>>()?;
        keyed.push((keys, out));
    }
    sort_keyed(&mut keyed, order);
    let mut out_rows: Vec<Vec<Value>> = keyed.into_iter().map(|(_, r)| r).collect();
    match &s.distinct {
        None => {}
        Some(Distinct::Distinct) => out_rows = distinct(out_rows),
        Some(other) => return Err(unsupported(&other.to_string())),
    }
    if let Some(top) = &s.top {
        if top.percent || top.with_ties {
            return Err(unsupported(&top.to_string()));
        }
        let n = match &top.quantity {
            Some(TopQuantity::Constant(n)) => *n,
            Some(TopQuantity::Expr(e)) => {
                let v = eval(ctx, &Env::new(&[], &[], outer), e)?;
                as_int(&v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        SqlError::new(
                            1060,
                            16,
                            "The number of rows in the TOP clause must be an integer.",
                        )
                    })?
            }
            None => return Err(syntax_error("TOP")),
        };
        out_rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    Ok(Relation {
        cols: out_cols,
        rows: out_rows,
    })
}

/// A reference to column `c` (qualified when it has a qualifier).
fn column_expr(c: &ColMeta) -> Expr {
    use sqlparser::ast::Ident;
    match &c.qualifier {
        Some(q) => Expr::CompoundIdentifier(vec![Ident::new(q), Ident::new(&c.name)]),
        None => Expr::Identifier(Ident::new(&c.name)),
    }
}

/// The FROM clause: its items cross-joined, each with its joins. No FROM: one empty row.
fn eval_from(
    ctx: &Ctx<'_>,
    from: &[TableWithJoins],
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    let mut acc = Relation {
        cols: Vec::new(),
        rows: vec![Vec::new()],
    };
    for twj in from {
        let rel = eval_joins(ctx, twj, outer)?;
        acc = product(&acc, &rel);
    }
    Ok(acc)
}

fn product(l: &Relation, r: &Relation) -> Relation {
    let mut cols = l.cols.clone();
    cols.extend(r.cols.iter().cloned());
    let mut rows = Vec::with_capacity(l.rows.len() * r.rows.len());
    for a in &l.rows {
        for b in &r.rows {
            let mut row = a.clone();
            row.extend(b.iter().cloned());
            rows.push(row);
        }
    }
    Relation { cols, rows }
}

fn eval_joins(
    ctx: &Ctx<'_>,
    twj: &TableWithJoins,
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    let mut left = eval_factor(ctx, &twj.relation, outer)?;
    for join in &twj.joins {
        left = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => {
                let right = eval_factor(ctx, &join.relation, outer)?;
                join_on(ctx, left, &right, c, false, outer)?
            }
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                let right = eval_factor(ctx, &join.relation, outer)?;
                join_on(ctx, left, &right, c, true, outer)?
            }
            JoinOperator::CrossJoin(JoinConstraint::None) => {
                let right = eval_factor(ctx, &join.relation, outer)?;
                product(&left, &right)
            }
            JoinOperator::CrossApply => apply(ctx, left, &join.relation, false, outer)?,
            JoinOperator::OuterApply => apply(ctx, left, &join.relation, true, outer)?,
            other => return Err(unsupported(&format!("{other:?}"))),
        };
    }
    Ok(left)
}

fn join_on(
    ctx: &Ctx<'_>,
    left: Relation,
    right: &Relation,
    constraint: &JoinConstraint,
    keep_left: bool,
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    let JoinConstraint::On(on) = constraint else {
        return Err(syntax_error("JOIN"));
    };
    let mut cols = left.cols;
    cols.extend(right.cols.iter().cloned());
    let mut rows = Vec::new();
    for a in left.rows {
        let mut matched = false;
        for b in &right.rows {
            let mut row = a.clone();
            row.extend(b.iter().cloned());
            if eval_pred(ctx, &Env::new(&cols, &row, outer), on)? == Some(true) {
                matched = true;
                rows.push(row);
            }
        }
        if keep_left && !matched {
            let mut row = a;
            row.extend(std::iter::repeat_n(Value::Null, right.cols.len()));
            rows.push(row);
        }
    }
    Ok(Relation { cols, rows })
}

/// `CROSS APPLY` / `OUTER APPLY`: the right side evaluated once per left row, which it may
/// reference.
fn apply(
    ctx: &Ctx<'_>,
    left: Relation,
    factor: &TableFactor,
    keep_left: bool,
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    // The right side's columns, even when the left side has no rows.
    let shape = {
        let env = Env::new(&left.cols, &[], outer);
        eval_factor(ctx, factor, Some(&env))?.cols
    };
    let mut cols = left.cols.clone();
    cols.extend(shape.iter().cloned());
    let mut rows = Vec::new();
    for a in &left.rows {
        let env = Env::new(&left.cols, a, outer);
        let right = eval_factor(ctx, factor, Some(&env))?;
        if right.rows.is_empty() && keep_left {
            let mut row = a.clone();
            row.extend(std::iter::repeat_n(Value::Null, shape.len()));
            rows.push(row);
        }
        for b in right.rows {
            let mut row = a.clone();
            row.extend(b);
            rows.push(row);
        }
    }
    Ok(Relation { cols, rows })
}

fn eval_factor(
    ctx: &Ctx<'_>,
    factor: &TableFactor,
    outer: Option<&Env<'_>>,
) -> Result<Relation, SqlError> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            version: None,
            ..
        } => {
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| match p.as_ident() {
                    Some(id) => id.value.clone(),
                    None => p.to_string(),
                })
                .collect();
            let qualifier = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .or_else(|| parts.last().cloned())
                .unwrap_or_default();
            let rel = if let [single] = parts.as_slice()
                && let Some((_, cte)) = ctx
                    .ctes
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(single))
            {
                requalified(cte, &qualifier)
            } else {
                let parts_ref: Vec<&str> = parts.iter().map(String::as_str).collect();
                let table = catalog::table(ctx.world, ctx.side, ctx.session, &parts_ref)
                    .ok_or_else(|| invalid_object(&parts.join(".")))?;
                Relation {
                    cols: table
                        .columns
                        .into_iter()
                        .map(|c| ColMeta {
                            qualifier: Some(qualifier.to_lowercase()),
                            name: c.name,
                            ty: c.ty,
                        })
                        .collect(),
                    rows: table.rows,
                }
            };
            match alias {
                Some(a) if !a.columns.is_empty() => renamed(rel, a),
                _ => Ok(rel),
            }
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let rel = eval_query(ctx, subquery, outer)?;
            match alias {
                Some(a) => renamed(rel, a),
                None => Err(SqlError::new(
                    102,
                    15,
                    "Incorrect syntax near ')'. A derived table needs an alias.",
                )),
            }
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias: None,
        } => eval_joins(ctx, table_with_joins, outer),
        other => Err(unsupported(&other.to_string())),
    }
}
