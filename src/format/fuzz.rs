//! Property tests of what a restore reads from a dump: the manifest reader and its checks
//! must never panic, whatever the bytes, and whatever they accept must keep their
//! promises (paths inside data/, totals that add up, definitions that create the named
//! object and nothing else). The corpus is a real manifest (fixtures/manifest-fidelity.json,
//! a dump of fixtures/fidelity.sql and sample.sql), mutated. `PROPTEST_CASES` raises the
//! number of cases for a longer run.

use proptest::prelude::*;
use serde_json::Value;

use super::definition::{self, Expected, ObjectKind};
use super::manifest::Manifest;
use super::validate;

const CORPUS: &str = include_str!("../../fixtures/manifest-fidelity.json");

fn corpus() -> Value {
    serde_json::from_str(CORPUS).expect("the corpus is JSON")
}

/// Every leaf (string, number, bool, null) of a JSON value, as a path of keys/indexes.
fn leaves(v: &Value, path: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(PathStep::Key(k.clone()));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(PathStep::Index(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

/// A replacement for a leaf: other strings (hostile ones included), numbers, or types.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        "[a-z_/.%\\\\-]{0,12}".prop_map(Value::from),
        Just(Value::from("/etc/passwd")),
        Just(Value::from("data/../../etc/passwd")),
        Just(Value::from("utf8mb4; DROP DATABASE x")),
        Just(Value::from("CREATE TABLE `x` (a int); DROP DATABASE x")),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(Value::Bool(true)),
    ]
}

/// What an accepted manifest promises, checked independently of `validate`.
fn promises_hold(m: &Manifest) {
    for (db, t, f) in m.data_files() {
        let p = std::path::Path::new(&f.path);
        let parts: Vec<_> = p.components().collect();
        assert_eq!(parts.len(), 2, "{}", f.path);
        assert_eq!(parts[0].as_os_str(), "data");
        assert!(
            matches!(parts[1], std::path::Component::Normal(_)),
            "{}",
            f.path
        );
        assert!(!f.path.contains(".."), "{}", f.path);
        assert!(!db.name.is_empty() && !t.name.is_empty());
    }
    let rows: u64 = m
        .databases
        .iter()
        .flat_map(|d| &d.tables)
        .map(|t| t.rows)
        .sum();
    assert_eq!(rows, m.totals.rows);
    for db in &m.databases {
        for t in &db.tables {
            let expected = Expected {
                kind: ObjectKind::Table,
                database: &db.name,
                name: &t.name,
                table: None,
            };
            assert!(definition::check(&t.create_sql, &expected).is_ok());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_manifest_is_refused_or_keeps_its_promises(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), replacement()), 1..4)
    ) {
        let mut v = corpus();
        let mut all = Vec::new();
        leaves(&v, &mut Vec::new(), &mut all);
        for (pick, new) in picks {
            *at(&mut v, &all[pick.index(all.len())]) = new;
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        if let Ok(m) = Manifest::parse(&bytes) {
            promises_hold(&m);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::parse(&bytes);
    }

    #[test]
    fn arbitrary_definitions_never_panic_the_checks(sql in any::<String>(), mode in "[A-Z_,]{0,40}") {
        for kind in [ObjectKind::Table, ObjectKind::View, ObjectKind::Procedure, ObjectKind::Trigger] {
            let e = Expected { kind, database: "d", name: "t", table: Some("t") };
            let _ = definition::check(&sql, &e);
        }
        let _ = definition::table_columns(&sql);
        let _ = definition::single_statement(&sql, Some(&mode));
    }

    /// Whatever follows a table definition after a top-level `;` is refused, however it
    /// is spelled (comments, quotes and executable comments around it).
    #[test]
    fn a_second_statement_after_a_table_is_always_refused(
        pad in "[ \\t\\n]{0,3}(/\\*[a-z ]{0,5}\\*/)?[ \\t\\n]{0,3}",
        stmt in "(DROP DATABASE x|SELECT 1|GRANT ALL ON \\*\\.\\* TO u|SET GLOBAL x=1|/\\*!DO 1\\*/)"
    ) {
        let e = Expected { kind: ObjectKind::Table, database: "d", name: "t", table: None };
        let sql = format!("CREATE TABLE `t` (a int, b varchar(3) DEFAULT ';'){pad};{pad}{stmt}");
        prop_assert!(definition::check(&sql, &e).is_err(), "accepted: {}", sql);
    }

    /// A data file path is accepted only as one plain name in data/.
    #[test]
    fn data_file_paths_are_accepted_only_inside_data(path in "(data/)?[a-z./\\\\%\\x00-\\x1f-]{0,12}") {
        if validate::data_file_path(&path).is_ok() {
            let leaf = path.strip_prefix("data/").unwrap();
            prop_assert!(!leaf.is_empty() && !leaf.contains('/') && !leaf.starts_with('.'));
            prop_assert!(leaf.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.%".contains(&b)));
        }
    }
}

#[test]
fn the_corpus_itself_is_accepted() {
    let m = Manifest::parse(CORPUS.as_bytes()).expect("the corpus is a valid manifest");
    promises_hold(&m);
    assert!(m
        .databases
        .iter()
        .any(|d| !d.routines.is_empty() && !d.triggers.is_empty()));
}
