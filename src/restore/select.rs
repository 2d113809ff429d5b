//! Choosing and renaming what a restore creates: `--include`/`--exclude` globs on
//! `db.name`, and `--rename SRC=DST`. Applied to the manifest itself, so that the rest of
//! the restore works on the chosen, renamed objects and knows nothing of the options.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::format::manifest::{ObjectName, StoredObject};
use crate::format::Manifest;
use crate::sql::ident;

/// What to restore, and under which database names.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    filter: Filter,
    renames: Vec<(String, String)>,
}

impl Selection {
    /// Checks the options' form: globs are `db.name` patterns, renames `SRC=DST` with no
    /// source or destination named twice.
    pub fn parse(include: &[String], exclude: &[String], renames: &[String]) -> Result<Self> {
        let filter = Filter::parse(include, exclude)?;
        let mut pairs = Vec::new();
        for r in renames {
            let Some((from, to)) = r.split_once('=') else {
                return Err(Error::Invalid(format!("--rename '{r}' must be SRC=DST")));
            };
            if from.is_empty() || to.is_empty() {
                return Err(Error::Invalid(format!(
                    "--rename '{r}' must name both databases"
                )));
            }
            if pairs.iter().any(|(f, _): &(String, String)| f == from) {
                return Err(Error::Invalid(format!(
                    "--rename names database '{from}' twice"
                )));
            }
            if pairs.iter().any(|(_, t): &(String, String)| t == to) {
                return Err(Error::Invalid(format!(
                    "--rename sends two databases to '{to}'"
                )));
            }
            pairs.push((from.to_string(), to.to_string()));
        }
        Ok(Selection {
            filter,
            renames: pairs,
        })
    }

    /// Whether nothing is filtered or renamed.
    pub fn is_everything(&self) -> bool {
        self.filter.is_everything() && self.renames.is_empty()
    }

    /// A stable description, part of a restore's identity for `--resume`.
    pub fn fingerprint(&self) -> String {
        format!("{} renames={:?}", self.filter.describe(), self.renames)
    }

    /// Whether object `name` of database `db` (its name in the dump) is restored.
    pub fn wants(&self, db: &str, name: &str) -> bool {
        self.filter.wants(db, name)
    }

    /// Whether anything of database `db` may be restored.
    pub fn may_want_database(&self, db: &str) -> bool {
        self.filter.may_want_database(db)
    }

    /// `--rename` pairs, source then destination.
    pub fn renames(&self) -> &[(String, String)] {
        &self.renames
    }

    /// The name database `db` is restored under.
    pub fn target(&self, db: &str) -> String {
        self.renames
            .iter()
            .find(|(f, _)| f == db)
            .map_or_else(|| db.to_string(), |(_, t)| t.clone())
    }

    /// Rewrites qualified references `` `SRC`. `` to `` `DST`. `` in a definition.
    fn rewrite(&self, sql: &str) -> String {
        let mut out = sql.to_string();
        for (from, to) in &self.renames {
            out = out.replace(&format!("{}.", ident(from)), &format!("{}.", ident(to)));
        }
        out
    }

    /// The manifest of what this selection restores. Fails when a rename or include
    /// names nothing in the dump, which is almost always a typo.
    pub fn apply(&self, manifest: &Manifest) -> Result<Manifest> {
        let names: HashSet<&str> = manifest.databases.iter().map(|d| d.name.as_str()).collect();
        for (from, _) in &self.renames {
            if !names.contains(from.as_str()) {
                return Err(Error::Invalid(format!(
                    "--rename {from}=...: the dump has no database '{from}'"
                )));
            }
        }
        let mut m = manifest.clone();
        for db in &mut m.databases {
            let src = db.name.clone();
            db.tables.retain(|t| self.wants(&src, &t.name));
            db.sequences.retain(|s| self.wants(&src, &s.name));
            db.views.retain(|v| self.wants(&src, &v.name));
            db.routines.retain(|r| self.wants(&src, &r.name));
            db.events.retain(|e| self.wants(&src, &e.name));
            // A trigger follows its table.
            db.triggers
                .retain(|t| self.wants(&src, t.table.as_deref().unwrap_or(&t.name)));
            for t in &mut db.tables {
                t.create_sql = self.rewrite(&t.create_sql);
            }
            for s in &mut db.sequences {
                s.create_sql = self.rewrite(&s.create_sql);
            }
            for o in db.stored_objects_mut() {
                rewrite_object(self, o);
            }
            db.name = self.target(&src);
        }
        m.databases.retain(|d| {
            !(d.tables.is_empty()
                && d.sequences.is_empty()
                && d.views.is_empty()
                && d.routines.is_empty()
                && d.events.is_empty())
        });
        if m.databases.is_empty() {
            return Err(Error::Invalid(
                "--include/--exclude leave nothing of the dump to restore".into(),
            ));
        }
        m.view_order = m
            .view_order
            .iter()
            .filter(|v| self.wants(&v.database, &v.name))
            .map(|v| ObjectName {
                database: self.target(&v.database),
                name: v.name.clone(),
            })
            .collect();
        m.totals = Default::default();
        for t in m.databases.iter().flat_map(|d| &d.tables) {
            m.totals.tables += 1;
            m.totals.rows += t.rows;
            m.totals.raw_bytes += t.raw_bytes;
            m.totals.files += t.files.len() as u64;
            m.totals.stored_bytes += t.files.iter().map(|f| f.stored_bytes).sum::<u64>();
        }
        Ok(m)
    }
}

fn rewrite_object(sel: &Selection, o: &mut StoredObject) {
    o.create_sql = sel.rewrite(&o.create_sql);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let e = Selection::parse(&[], &[], &s(&["a"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--rename 'a' must be SRC=DST"), "{e}");
        let e = Selection::parse(&[], &[], &s(&["a=b", "c=b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("two databases to 'b'"), "{e}");
        let e = Selection::parse(&[], &[], &s(&["a=b", "a=c"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'a' twice"), "{e}");
        let e = Selection::parse(&s(&["orders"]), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("db.name pattern"), "{e}");
    }

    #[test]
    fn renames_rewrite_qualified_references_only() {
        let sel = Selection::parse(&[], &[], &["shop=shop_copy".to_string()]).unwrap();
        assert_eq!(
            sel.rewrite("select `shop`.`t`.`a` from `shop`.`t` join `shopx`.`u` where c = 'shop'"),
            "select `shop_copy`.`t`.`a` from `shop_copy`.`t` join `shopx`.`u` where c = 'shop'"
        );
    }
}
