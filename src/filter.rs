//! Which objects `--include` and `--exclude` select: glob patterns on `db.name`, shared by
//! dump and restore. A pattern is split into a database part and a name part at its first
//! dot outside backticks, and each part is matched on its own, so that a name holding a
//! dot is matched by quoting it: `` `a.b`.* `` selects every object of database `a.b`.

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};

/// One `db.name` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    db: GlobMatcher,
    name: GlobMatcher,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self> {
        let (db, name) = split(text).ok_or_else(|| {
            Error::Invalid(format!(
                "--include/--exclude '{text}' must be a db.name pattern, e.g. 'shop.*' or '*.log_*' (quote a name holding a dot with backticks: '`a.b`.*')"
            ))
        })?;
        let glob = |part: &str| {
            // `*` matches any run of characters, `?` one character, `[...]` a class;
            // names are matched as they are, case and all.
            GlobBuilder::new(part)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| Error::Invalid(format!("--include/--exclude '{text}': {e}")))
        };
        Ok(Pattern {
            text: text.to_string(),
            db: glob(&db)?,
            name: glob(&name)?,
        })
    }

    fn matches(&self, db: &str, name: &str) -> bool {
        self.db.is_match(db) && self.name.is_match(name)
    }
}

/// Splits `db.name` at the first dot outside backticks and removes the backticks (a
/// doubled backtick inside them is one backtick).
fn split(text: &str) -> Option<(String, String)> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                parts.last_mut()?.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted && parts.len() == 1 => parts.push(String::new()),
            _ => parts.last_mut()?.push(c),
        }
    }
    match (quoted, parts.as_slice()) {
        (false, [db, name]) if !db.is_empty() && !name.is_empty() => {
            Some((db.clone(), name.clone()))
        }
        _ => None,
    }
}

/// `--include` and `--exclude`: an object is selected when some include pattern matches
/// it (or there is none) and no exclude pattern does.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Filter {
    /// Parses the patterns; a malformed one is an error naming it.
    pub fn parse(include: &[String], exclude: &[String]) -> Result<Self> {
        Ok(Filter {
            include: include
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_>>()?,
            exclude: exclude
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_>>()?,
        })
    }

    /// Whether no pattern was given.
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the object `db`.`name` is selected.
    pub fn wants(&self, db: &str, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(db, name)))
            && !self.exclude.iter().any(|p| p.matches(db, name))
    }

    /// Whether anything of database `db` can be selected (an include pattern's database
    /// part matches it, or there is none).
    pub fn may_want_database(&self, db: &str) -> bool {
        self.include.is_empty() || self.include.iter().any(|p| p.db.is_match(db))
    }

    /// A stable description of the patterns.
    pub fn describe(&self) -> String {
        let texts = |v: &[Pattern]| v.iter().map(|p| p.text.clone()).collect::<Vec<_>>();
        format!(
            "include={:?} exclude={:?}",
            texts(&self.include),
            texts(&self.exclude)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Filter::parse(&s(include), &s(exclude)).unwrap()
    }

    #[test]
    fn globs_match_like_a_shell_on_each_part() {
        let f = filter(&["shop.*", "*.log_?"], &["shop.tmp*"]);
        assert!(f.wants("shop", "orders"));
        assert!(f.wants("a", "log_1"));
        assert!(!f.wants("a", "log_12"));
        assert!(!f.wants("shopping", "orders"));
        assert!(!f.wants("shop", "tmp_1"));
        assert!(filter(&["s*p.o*s"], &[]).wants("shop", "orders"));
        assert!(filter(&[], &[]).wants("any", "thing"));
    }

    #[test]
    fn names_holding_dots_are_matched_when_quoted() {
        let f = filter(&["`a.b`.*"], &[]);
        assert!(f.wants("a.b", "t"));
        assert!(!f.wants("a", "b.t"));
        // Unquoted, the first dot separates: db `a`, names matching `b.*`.
        let f = filter(&["a.b.*"], &[]);
        assert!(f.wants("a", "b.t"));
        assert!(!f.wants("a.b", "t"));
        assert!(filter(&["`x``y`.t"], &[]).wants("x`y", "t"));
    }

    #[test]
    fn malformed_patterns_are_refused_naming_them() {
        for bad in ["orders", "shop.", ".t", "`a.b", "a.[b"] {
            let e = Filter::parse(&[bad.to_string()], &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
