//! Dump planning: each table becomes one or more key ranges, each read by one worker
//! with one SELECT, largest first. Integer keys are split by arithmetic; other usable keys
//! by walking the index inside the snapshot; a table with no usable key is one range.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::catalog::{Column, TableInfo, UniqueKey};
use crate::error::{Result, SqlContext};
use crate::sql::{bytes_in_charset, ident, string};

/// One SELECT's worth of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// SQL condition selecting the range (`None`: the whole table).
    pub predicate: Option<String>,
    /// Position of the range in key order.
    pub index: usize,
}

const INTEGER_TYPES: &[&str] = &[
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
];
const WALKABLE_TYPES: &[&str] = &[
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "decimal",
    "char",
    "varchar",
    "binary",
    "varbinary",
    "date",
    "datetime",
];

/// The key to split a table on: the primary key, else a unique key without prefix
/// columns (one with no NULLable column preferred), of types whose comparison a literal
/// reproduces exactly. A unique key allows many NULLs: those rows get a range of their own.
pub fn chunk_key(table: &TableInfo) -> Option<(&UniqueKey, Vec<&Column>)> {
    let usable = |k: &'_ UniqueKey| -> Option<Vec<&Column>> {
        if k.prefix {
            return None;
        }
        let cols: Option<Vec<&Column>> = k
            .columns
            .iter()
            .map(|name| table.columns.iter().find(|c| &c.name == name))
            .collect();
        let cols = cols?;
        cols.iter()
            .all(|c| WALKABLE_TYPES.contains(&c.data_type.as_str()))
            .then_some(cols)
    };
    let keys = || {
        table
            .unique_keys
            .iter()
            .filter_map(|k| usable(k).map(|c| (k, c)))
    };
    keys()
        .find(|(_, cols)| cols.iter().all(|c| !c.nullable))
        .or_else(|| keys().next())
}

/// `(a IS NULL OR b IS NULL)` over the nullable columns of a key, if any.
fn null_predicate(names: &[String], cols: &[&Column]) -> Option<String> {
    let terms: Vec<String> = names
        .iter()
        .zip(cols)
        .filter(|(_, c)| c.nullable)
        .map(|(n, _)| format!("{} IS NULL", ident(n)))
        .collect();
    (!terms.is_empty()).then(|| format!("({})", terms.join(" OR ")))
}

/// Splits `[min, max]` into `n` ranges of integer keys; boundaries are computed in i128 so
/// that BIGINT UNSIGNED max and signed min cannot overflow. Returns the `n - 1` interior
/// boundaries (each the first key of the next range).
pub fn integer_boundaries(min: i128, max: i128, n: u64) -> Vec<i128> {
    if n <= 1 || max <= min {
        return Vec::new();
    }
    let span = max - min + 1;
    let n = i128::from(n).min(span);
    (1..n).map(|i| min + span * i / n).collect()
}

/// Predicates for ranges split at integer boundaries: `k < b1`, `k >= b1 AND k < b2`, ..., `k >= bn`.
pub fn integer_predicates(column: &str, boundaries: &[i128]) -> Vec<String> {
    let c = ident(column);
    let mut out = Vec::new();
    for i in 0..=boundaries.len() {
        let lower = i
            .checked_sub(1)
            .map(|j| format!("{c} >= {}", boundaries[j]));
        let upper = boundaries.get(i).map(|b| format!("{c} < {b}"));
        out.push(match (lower, upper) {
            (Some(l), Some(u)) => format!("{l} AND {u}"),
            (Some(l), None) => l,
            (None, Some(u)) => u,
            (None, None) => "1".into(),
        });
    }
    out
}

/// `(a, b) > (x, y)` spelled out so that every server's range optimizer uses the index:
/// `a > x OR (a = x AND b > y)`. `op` is `>` or `<=`.
pub fn tuple_compare(columns: &[String], values: &[String], op: &str) -> String {
    let strict = if op == ">" { ">" } else { "<" };
    let mut terms = Vec::new();
    for i in 0..columns.len() {
        let mut parts: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", ident(&columns[j]), values[j]))
            .collect();
        let last = if i + 1 == columns.len() { op } else { strict };
        parts.push(format!("{} {last} {}", ident(&columns[i]), values[i]));
        terms.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", terms.join(" OR "))
}

/// Predicates for ranges split at walked key tuples: `k <= b1`, `k > b1 AND k <= b2`, ..., `k > bn`.
pub fn tuple_predicates(columns: &[String], boundaries: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..=boundaries.len() {
        let lower = i
            .checked_sub(1)
            .map(|j| tuple_compare(columns, &boundaries[j], ">"));
        let upper = boundaries.get(i).map(|b| tuple_compare(columns, b, "<="));
        out.push(match (lower, upper) {
            (Some(l), Some(u)) => format!("{l} AND {u}"),
            (Some(l), None) => l,
            (None, Some(u)) => u,
            (None, None) => "1".into(),
        });
    }
    out
}

/// A key value as a literal that compares the way the column does.
fn literal(col: &Column, value: &[u8]) -> String {
    match col.data_type.as_str() {
        t if INTEGER_TYPES.contains(&t) || t == "decimal" => {
            String::from_utf8_lossy(value).into_owned()
        }
        "date" | "datetime" => string(&String::from_utf8_lossy(value)),
        _ => bytes_in_charset(
            value,
            col.charset.as_deref().unwrap_or("binary"),
            col.collation.as_deref(),
        ),
    }
}

/// Plans the ranges of one table, reading key bounds on `conn` (inside the snapshot).
pub async fn plan_table(
    conn: &mut Conn,
    table: &TableInfo,
    chunk_bytes: u64,
) -> Result<Vec<Range>> {
    let whole = vec![Range {
        predicate: None,
        index: 0,
    }];
    let pieces = table.estimated_bytes.div_ceil(chunk_bytes.max(1));
    let Some((key, cols)) = chunk_key(table) else {
        return Ok(whole);
    };
    if pieces <= 1 {
        return Ok(whole);
    }
    let from = crate::sql::qualified(&table.database, &table.name);
    let nulls = null_predicate(&key.columns, &cols);
    let not_null = nulls.as_ref().map(|n| format!("NOT {n}"));
    let integer = cols.len() == 1 && INTEGER_TYPES.contains(&cols[0].data_type.as_str());
    let span = if integer {
        integer_span(conn, &from, &key.columns[0]).await?
    } else {
        None
    };
    // Arithmetic splits evenly only where keys are dense; a sparse key (gaps, or a few
    // outliers at the type's ends) is walked like any other.
    let dense = |(min, max): (i128, i128)| max - min < i128::from(table.estimated_rows.max(1)) * 16;
    let mut predicates = match span {
        Some(s) if dense(s) => {
            integer_predicates(&key.columns[0], &integer_boundaries(s.0, s.1, pieces))
        }
        None if integer => return Ok(whole),
        _ => {
            let step = (table.estimated_rows / pieces).max(1);
            let boundaries = walk_index(
                conn,
                &from,
                &key.columns,
                &cols,
                step,
                pieces,
                not_null.as_deref(),
            )
            .await?;
            tuple_predicates(&key.columns, &boundaries)
        }
    };
    // Comparisons never select a NULL key; those rows are a range of their own.
    if let (Some(nulls), Some(not_null)) = (nulls, not_null) {
        for p in &mut predicates {
            *p = format!("({p}) AND {not_null}");
        }
        predicates.push(nulls);
    }
    Ok(predicates
        .into_iter()
        .enumerate()
        .map(|(index, p)| Range {
            predicate: Some(p),
            index,
        })
        .collect())
}

/// MIN and MAX of an integer key, inside the snapshot; `None` for an empty table.
async fn integer_span(conn: &mut Conn, from: &str, column: &str) -> Result<Option<(i128, i128)>> {
    let c = ident(column);
    let row: Option<(Option<String>, Option<String>)> = conn
        .query_first(format!(
            "SELECT /* mysnap plan */ MIN({c}), MAX({c}) FROM {from}"
        ))
        .await
        .ctx(|| format!("reading the key range of {from}"))?;
    Ok(match row {
        Some((Some(min), Some(max))) => Some((min.parse().unwrap_or(0), max.parse().unwrap_or(0))),
        _ => None,
    })
}

/// Finds boundary key tuples every `step` rows along the key, at most `pieces - 1` of them.
async fn walk_index(
    conn: &mut Conn,
    from: &str,
    names: &[String],
    cols: &[&Column],
    step: u64,
    pieces: u64,
    not_null: Option<&str>,
) -> Result<Vec<Vec<String>>> {
    let list = names
        .iter()
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    let mut boundaries: Vec<Vec<String>> = Vec::new();
    while (boundaries.len() as u64) < pieces - 1 {
        let conditions: Vec<String> = boundaries
            .last()
            .map(|b| tuple_compare(names, b, ">"))
            .into_iter()
            .chain(not_null.map(str::to_owned))
            .collect();
        let after = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT /* mysnap plan */ {list} FROM {from} {after} ORDER BY {list} LIMIT 1 OFFSET {}",
            step - 1
        );
        let row: Option<Row> = conn
            .query_first(sql)
            .await
            .ctx(|| format!("walking the key of {from}"))?;
        let Some(row) = row else { break };
        let values: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| match row.as_ref(i) {
                Some(Value::Bytes(b)) => literal(c, b),
                Some(Value::Int(v)) => v.to_string(),
                Some(Value::UInt(v)) => v.to_string(),
                _ => "NULL".into(),
            })
            .collect();
        boundaries.push(values);
    }
    Ok(boundaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_split_covers_the_extremes_without_overflow() {
        let min = i128::from(i64::MIN);
        let max = i128::from(u64::MAX);
        let b = integer_boundaries(min, max, 4);
        assert_eq!(b.len(), 3);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(min < b[0] && b[2] <= max);
        let p = integer_predicates("id", &b);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], format!("`id` < {}", b[0]));
        assert_eq!(p[3], format!("`id` >= {}", b[2]));
    }

    #[test]
    fn every_key_falls_in_exactly_one_integer_range() {
        let (min, max) = (-7i128, 23i128);
        let b = integer_boundaries(min, max, 5);
        for k in min..=max {
            let hits = (0..=b.len())
                .filter(|&i| {
                    let lo = i.checked_sub(1).is_none_or(|j| k >= b[j]);
                    let hi = b.get(i).is_none_or(|&u| k < u);
                    lo && hi
                })
                .count();
            assert_eq!(hits, 1, "key {k}");
        }
        // More pieces than keys: never an empty boundary list with duplicates.
        let few = integer_boundaries(0, 2, 10);
        assert_eq!(few, vec![1, 2]);
    }

    #[test]
    fn tuple_ranges_are_spelled_for_the_range_optimizer() {
        let cols = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            tuple_compare(&cols, &["'x'".into(), "5".into()], ">"),
            "((`a` > 'x') OR (`a` = 'x' AND `b` > 5))"
        );
        let p = tuple_predicates(&cols, &[vec!["1".into(), "2".into()]]);
        assert_eq!(
            p,
            vec![
                "((`a` < 1) OR (`a` = 1 AND `b` <= 2))".to_string(),
                "((`a` > 1) OR (`a` = 1 AND `b` > 2))".to_string()
            ]
        );
    }
}
