//! Splitting a `SHOW CREATE TABLE` statement into the table the loaders fill (primary
//! key and whatever else must stay) and the secondary indexes and foreign keys added
//! after the data: building an index once over loaded rows is far cheaper than keeping
//! it up to date row by row.

/// A table definition split for loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTable {
    /// `CREATE TABLE` without the deferred clauses.
    pub create: String,
    /// Deferred index clauses, e.g. ``KEY `k` (`a`)``, ready for `ALTER TABLE ... ADD`.
    pub indexes: Vec<String>,
    /// Deferred foreign-key clauses, e.g. ``CONSTRAINT `fk` FOREIGN KEY ...``.
    pub foreign_keys: Vec<String>,
}

/// The name of an index or constraint clause: the first quoted identifier
/// (``KEY `k` (...)``, ``CONSTRAINT `fk` FOREIGN KEY ...``).
pub fn clause_name(clause: &str) -> Option<String> {
    index_columns(&format!("x ({clause}")).into_iter().next()
}

/// The table a foreign-key clause references, as (database, table); an unqualified one
/// is in `db`.
pub fn referenced_table(clause: &str, db: &str) -> Option<(String, String)> {
    let at = clause.find(" REFERENCES ")? + " REFERENCES ".len();
    let names = crate::format::definition::quoted_names(&clause[at..], 2);
    let rest = &clause[at..];
    match names.as_slice() {
        // `a`.`b` (`col`): the second name is the table when a dot joins them.
        [a, b, ..] if rest.trim_start().starts_with('`') && joined_by_dot(rest) => {
            Some((a.clone(), b.clone()))
        }
        [a, ..] => Some((db.to_string(), a.clone())),
        [] => None,
    }
}

/// Whether the first quoted name of `s` is followed by a dot.
fn joined_by_dot(s: &str) -> bool {
    let s = s.trim_start();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if s[i + 1..].starts_with('`') {
                chars.next();
                continue;
            }
            return s[i + 1..].starts_with('.');
        }
    }
    false
}

/// `ALTER TABLE ... ADD` for clauses, if any.
pub fn alter(table: &str, clauses: &[String]) -> Option<String> {
    if clauses.is_empty() {
        return None;
    }
    let adds: Vec<String> = clauses.iter().map(|c| format!("ADD {c}")).collect();
    Some(format!("ALTER TABLE {table} {}", adds.join(", ")))
}

/// The column names an index clause covers (`KEY `k` (`a`,`b`(3))` → a, b).
fn index_columns(clause: &str) -> Vec<String> {
    let Some(open) = clause.find(" (") else {
        return Vec::new();
    };
    let mut cols = Vec::new();
    let mut rest = &clause[open + 2..];
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let mut name = String::new();
        let mut chars = after.char_indices().peekable();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if chars.peek().map(|&(_, n)| n) == Some('`') {
                    name.push('`');
                    chars.next();
                    continue;
                }
                end = i + 1;
                break;
            }
            name.push(c);
        }
        cols.push(name);
        rest = &after[end..];
        // Skip a prefix length like (3) and the separator.
        match rest.find([',', ')']) {
            Some(i) if rest.as_bytes()[i] == b')' && !rest[..i].contains('(') => break,
            _ => {}
        }
    }
    cols
}

/// The byte range of the definition list `( ... )` and its top-level items, found by a
/// scan that skips quoted identifiers and strings (names may hold newlines, commas or
/// parentheses).
fn definition_items(create: &str) -> Option<(usize, usize, Vec<&str>)> {
    let bytes = create.as_bytes();
    let (mut depth, mut open, mut item_start) = (0usize, None, 0usize);
    let mut items = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'`' | b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if q != b'`' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == q {
                        // A doubled quote is one quote character inside the name or string.
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                if depth == 1 && open.is_none() {
                    open = Some(i);
                    item_start = i + 1;
                }
            }
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    items.push(&create[item_start..i]);
                    return Some((open?, i, items));
                }
            }
            b',' if depth == 1 => {
                items.push(&create[item_start..i]);
                item_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether a table has a primary key or a unique key: an item of its definition list,
/// so that a name, comment or string that holds the words does not count.
pub fn has_unique_key(create: &str) -> bool {
    let Some((_, _, items)) = definition_items(create) else {
        return false;
    };
    items.iter().map(|i| i.trim_start()).any(|i| {
        ["PRIMARY KEY", "UNIQUE KEY ", "UNIQUE INDEX "]
            .iter()
            .any(|p| i.starts_with(p))
    })
}

/// Splits a definition. `defer` false keeps every index in place (foreign keys are still
/// added last, so that load order across tables does not matter).
pub fn split_create_table(create: &str, defer: bool) -> SplitTable {
    let Some((open, close, items)) = definition_items(create) else {
        return SplitTable {
            create: create.to_string(),
            indexes: vec![],
            foreign_keys: vec![],
        };
    };
    let items: Vec<&str> = items.iter().map(|i| i.trim()).collect();
    let auto_increment_col = items
        .iter()
        .find(|l| l.starts_with('`') && l.contains(" AUTO_INCREMENT"))
        .and_then(|l| index_columns(&format!("x ({l})")).into_iter().next());
    let has_primary = items.iter().any(|l| l.starts_with("PRIMARY KEY"));
    let mut kept: Vec<String> = Vec::new();
    let mut indexes = Vec::new();
    let mut foreign_keys = Vec::new();
    let mut clustered_kept = has_primary;
    let mut auto_increment_indexed = false;
    for clause in items {
        let clause = clause.to_string();
        let is_fk = clause.starts_with("CONSTRAINT ") && clause.contains(" FOREIGN KEY ");
        let is_index = [
            "KEY ",
            "UNIQUE KEY ",
            "FULLTEXT KEY ",
            "SPATIAL KEY ",
            "INDEX ",
            "UNIQUE INDEX ",
        ]
        .iter()
        .any(|p| clause.starts_with(p));
        if is_fk {
            foreign_keys.push(clause);
            continue;
        }
        if is_index && defer {
            let cols = index_columns(&clause);
            let unique = clause.starts_with("UNIQUE");
            // InnoDB clusters a table without a primary key on its first unique key;
            // AUTO_INCREMENT needs an index that starts with its column.
            let keeps_clustering = unique && !clustered_kept;
            let serves_auto_increment = !auto_increment_indexed
                && auto_increment_col.is_some()
                && cols.first() == auto_increment_col.as_ref();
            if !keeps_clustering && !serves_auto_increment {
                indexes.push(clause);
                continue;
            }
            clustered_kept |= keeps_clustering;
            auto_increment_indexed |= serves_auto_increment;
        }
        kept.push(format!("  {clause}"));
    }
    let create = format!(
        "{}(\n{}\n{}",
        &create[..open],
        kept.join(",\n"),
        &create[close..]
    );
    SplitTable {
        create,
        indexes,
        foreign_keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SplitTable {
        /// `ALTER TABLE db.t ADD ..., ADD ...` for the deferred indexes, if any.
        pub fn add_indexes_sql(&self, table: &str) -> Option<String> {
            alter(table, &self.indexes)
        }

        /// `ALTER TABLE db.t ADD ...` for the deferred foreign keys, if any.
        pub fn add_foreign_keys_sql(&self, table: &str) -> Option<String> {
            alter(table, &self.foreign_keys)
        }
    }

    const IX: &str = "CREATE TABLE `ix` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `a` varchar(10) DEFAULT NULL COMMENT 'x, KEY y',
  `b` point NOT NULL,
  `c` text DEFAULT NULL,
  `d` int(11) DEFAULT NULL,
  UNIQUE KEY `uq` (`a`),
  KEY `k2` (`d`,`a`(3)),
  SPATIAL KEY `sp` (`b`),
  KEY `aik` (`id`),
  FULLTEXT KEY `ft` (`c`),
  CONSTRAINT `fk` FOREIGN KEY (`d`) REFERENCES `es` (`id`) ON DELETE CASCADE,
  CONSTRAINT `ck` CHECK (`d` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci";

    #[test]
    fn secondary_indexes_and_foreign_keys_are_deferred() {
        let s = split_create_table(IX, true);
        // No primary key: the first unique key stays (it is the clustered index), and the
        // AUTO_INCREMENT column keeps its index.
        assert_eq!(
            s.create,
            "CREATE TABLE `ix` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `a` varchar(10) DEFAULT NULL COMMENT 'x, KEY y',
  `b` point NOT NULL,
  `c` text DEFAULT NULL,
  `d` int(11) DEFAULT NULL,
  UNIQUE KEY `uq` (`a`),
  KEY `aik` (`id`),
  CONSTRAINT `ck` CHECK (`d` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci"
        );
        assert_eq!(
            s.indexes,
            [
                "KEY `k2` (`d`,`a`(3))",
                "SPATIAL KEY `sp` (`b`)",
                "FULLTEXT KEY `ft` (`c`)"
            ]
        );
        assert_eq!(
            s.add_foreign_keys_sql("`d`.`ix`").unwrap(),
            "ALTER TABLE `d`.`ix` ADD CONSTRAINT `fk` FOREIGN KEY (`d`) REFERENCES `es` (`id`) ON DELETE CASCADE"
        );
    }

    #[test]
    fn keeping_indexes_still_moves_foreign_keys_last() {
        let s = split_create_table(IX, false);
        assert!(s.indexes.is_empty());
        assert!(s
            .create
            .contains("FULLTEXT KEY `ft` (`c`),\n  CONSTRAINT `ck`"));
        assert!(!s.create.contains("FOREIGN KEY"));
        assert_eq!(s.foreign_keys.len(), 1);
    }

    #[test]
    fn partition_clauses_and_primary_keys_stay() {
        let t = "CREATE TABLE `ix2` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `d` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u` (`d`,`id`),
  KEY `d` (`d`)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci
 PARTITION BY HASH (`id`)
PARTITIONS 2";
        let s = split_create_table(t, true);
        assert_eq!(s.indexes, ["UNIQUE KEY `u` (`d`,`id`)", "KEY `d` (`d`)"]);
        assert!(s.create.ends_with("PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci\n PARTITION BY HASH (`id`)\nPARTITIONS 2"));
        assert_eq!(
            s.add_indexes_sql("`x`.`ix2`").unwrap(),
            "ALTER TABLE `x`.`ix2` ADD UNIQUE KEY `u` (`d`,`id`), ADD KEY `d` (`d`)"
        );
    }

    #[test]
    fn names_with_newlines_commas_and_parentheses_do_not_confuse_the_split() {
        let t = "CREATE TABLE `line\nbreak` (\n  `a,(b` int(11) NOT NULL DEFAULT 0 COMMENT 'x),\\' KEY y',\n  `c` int(11) DEFAULT NULL,\n  PRIMARY KEY (`a,(b`),\n  KEY `k(` (`c`)\n) ENGINE=InnoDB";
        let s = split_create_table(t, true);
        assert_eq!(s.indexes, ["KEY `k(` (`c`)"]);
        assert_eq!(
            s.create,
            "CREATE TABLE `line\nbreak` (\n  `a,(b` int(11) NOT NULL DEFAULT 0 COMMENT 'x),\\' KEY y',\n  `c` int(11) DEFAULT NULL,\n  PRIMARY KEY (`a,(b`)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn unique_keys_are_items_of_the_definition_list_not_words_in_it() {
        assert!(has_unique_key(IX), "UNIQUE KEY `uq`");
        assert!(has_unique_key(
            "CREATE TABLE `p` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
        ));
        assert!(has_unique_key(
            "CREATE TABLE `u` (\n  `a` int(11) DEFAULT NULL,\n  UNIQUE INDEX `a` (`a`)\n) ENGINE=InnoDB"
        ));
        let keyless = "CREATE TABLE `PRIMARY KEY` (
  `a` int(11) DEFAULT NULL COMMENT 'x,PRIMARY KEY (a),UNIQUE KEY u (a)',
  `UNIQUE KEY` int(11) /* PRIMARY KEY */ DEFAULT NULL,
  KEY `k` (`a`),
  CONSTRAINT `PRIMARY KEY` CHECK (`a` <> 'UNIQUE KEY u')
) ENGINE=InnoDB COMMENT='no PRIMARY KEY or UNIQUE KEY here'";
        assert!(!has_unique_key(keyless));
        assert!(!has_unique_key("CREATE TABLE `x` ENGINE=InnoDB"));
    }

    #[test]
    fn clause_names_are_the_first_identifier() {
        assert_eq!(
            clause_name("UNIQUE KEY `u``x` (`a`)").as_deref(),
            Some("u`x")
        );
        assert_eq!(
            clause_name("CONSTRAINT `fk` FOREIGN KEY (`d`) REFERENCES `es` (`id`)").as_deref(),
            Some("fk")
        );
    }

    #[test]
    fn index_columns_are_read_with_prefixes_and_quoted_backticks() {
        assert_eq!(index_columns("KEY `k` (`a`,`b``c`(3))"), ["a", "b`c"]);
    }
}
