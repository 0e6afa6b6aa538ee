//! Many rows as one statement's input: a derived table `v(column1, column2, …)` read from one
//! JSON parameter on SQLite (`json_each`) and from one array parameter per column on
//! PostgreSQL (`unnest`). The statement's text — and so its prepared plan — is the same for 1
//! row or 500, and the parameter count stays tiny: binding one parameter per value instead
//! cost SQLite's `sqlite3_bind_parameter_name` 35 % of the writer thread's time at 256-row
//! batches (it is linear in the parameter count, and called for each parameter).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Text,
    Int,
}

#[derive(Clone, Debug)]
pub enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(Some(s.to_string()))
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(Some(s))
    }
}

impl From<Option<&str>> for Val {
    fn from(s: Option<&str>) -> Val {
        Val::Text(s.map(str::to_string))
    }
}

impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(Some(n))
    }
}

impl From<Option<i64>> for Val {
    fn from(n: Option<i64>) -> Val {
        Val::Int(n)
    }
}

/// Rows of a fixed list of column types, in insertion order.
pub struct RowSet {
    dialect: Dialect,
    types: &'static [Ty],
    /// Row-major.
    values: Vec<Val>,
}

impl RowSet {
    pub fn new(dialect: Dialect, types: &'static [Ty]) -> RowSet {
        RowSet {
            dialect,
            types,
            values: Vec::new(),
        }
    }

    pub fn push<const N: usize>(&mut self, row: [Val; N]) {
        assert_eq!(N, self.types.len(), "a row has one value per column");
        self.values.extend(row);
    }

    /// The derived table's SQL (alias it `AS v`), using parameters `$first…`; and the
    /// number of the first parameter after them.
    pub fn sql(&self, first: usize) -> (String, usize) {
        let columns = self.types.len();
        match self.dialect {
            Dialect::Postgres => {
                let arrays: Vec<String> = self
                    .types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| {
                        let cast = if *ty == Ty::Text { "text[]" } else { "bigint[]" };
                        format!("${}::{cast}", first + i)
                    })
                    .collect();
                let names: Vec<String> = (1..=columns).map(|i| format!("column{i}")).collect();
                let sql = format!(
                    "(SELECT * FROM unnest({}) AS u({}))",
                    arrays.join(", "),
                    names.join(", ")
                );
                (sql, first + columns)
            }
            Dialect::Sqlite => {
                let columns: Vec<String> = (1..=columns)
                    .map(|i| format!("json_extract(value, '$[{}]') AS column{i}", i - 1))
                    .collect();
                let sql = format!("(SELECT {} FROM json_each(${first}))", columns.join(", "));
                (sql, first + 1)
            }
        }
    }

    /// Binds the parameters [`RowSet::sql`] named, in order.
    pub fn bind<'q>(&self, mut query: Query<'q, Any, AnyArguments<'q>>) -> Query<'q, Any, AnyArguments<'q>> {
        match self.dialect {
            Dialect::Postgres => {
                let columns = self.types.len();
                for c in 0..columns {
                    let items = self.values.iter().skip(c).step_by(columns);
                    query = query.bind(array_literal(items));
                }
            }
            Dialect::Sqlite => query = query.bind(self.json()),
        }
        query
    }

    /// SQLite: the rows as one JSON array of arrays, read back with `json_each`.
    fn json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .values
            .chunks(self.types.len())
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        Val::Text(t) => t.as_deref().map_or(serde_json::Value::Null, Into::into),
                        Val::Int(n) => n.map_or(serde_json::Value::Null, Into::into),
                    })
                    .collect()
            })
            .collect();
        serde_json::Value::Array(rows).to_string()
    }
}

/// PostgreSQL's text form of an array: `{"a","b\"c",NULL}` / `{1,2,NULL}`.
fn array_literal<'a>(items: impl Iterator<Item = &'a Val>) -> String {
    let mut out = String::from("{");
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Val::Text(Some(s)) => {
                out.push('"');
                for ch in s.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
            Val::Int(Some(n)) => out.push_str(&n.to_string()),
            Val::Text(None) | Val::Int(None) => out.push_str("NULL"),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_arrays_quote_every_text_and_keep_nulls() {
        let items = [Val::from("a\"b\\c"), Val::Text(None), Val::from("{,}")];
        assert_eq!(array_literal(items.iter()), r#"{"a\"b\\c",NULL,"{,}"}"#);
        assert_eq!(array_literal([Val::from(-5), Val::Int(None)].iter()), "{-5,NULL}");
    }

    #[test]
    fn one_parameter_per_column_on_postgres_and_one_json_parameter_on_sqlite() {
        const TYPES: &[Ty] = &[Ty::Text, Ty::Int];
        for (dialect, expected) in [
            (
                Dialect::Postgres,
                "(SELECT * FROM unnest($2::text[], $3::bigint[]) AS u(column1, column2))",
            ),
            (
                Dialect::Sqlite,
                "(SELECT json_extract(value, '$[0]') AS column1, json_extract(value, '$[1]') AS column2 FROM json_each($2))",
            ),
        ] {
            let mut rows = RowSet::new(dialect, TYPES);
            rows.push(["x".into(), 1.into()]);
            rows.push(["y".into(), 2.into()]);
            let (sql, next) = rows.sql(2);
            assert_eq!(sql, expected);
            assert_eq!(next, if dialect == Dialect::Postgres { 4 } else { 3 });
        }
    }

    #[test]
    fn sqlite_rows_are_a_json_array_of_rows_keeping_nulls_and_quotes() {
        let mut rows = RowSet::new(Dialect::Sqlite, &[Ty::Text, Ty::Int]);
        rows.push([Val::from("a\"b"), Val::Int(None)]);
        rows.push([Val::Text(None), Val::from(i64::MIN)]);
        assert_eq!(rows.json(), r#"[["a\"b",null],[null,-9223372036854775808]]"#);
    }
}
